/* hybi._speedups: the compiled twin of hybi.sansio._pure (the hot loops, nothing else).
 *
 * Every function here has a pure-Python twin of the same name and contract in
 * hybi.sansio._pure; hybi.sansio._accel picks one set at import. The tests run both
 * and compare them byte for byte.
 *
 *   mask(data, key, offset=0) -> bytes        RFC 6455 section 5.3 XOR, key turned by offset
 *   masked_frame(first, payload, key) -> bytes a whole client frame in one allocation
 *   utf8_check(data, state=0) -> int           incremental UTF-8 validation (RFC 3629)
 *   whole_messages(data, pos, mask, max_size)  a run of small whole messages, parsed at once
 *   whole_interim_messages, whole_sentinel_messages  the same for hybi-01..06 and hixie
 *   PayloadBuilder(size)                       a large payload unmasked into one buffer,
 *                                              received into in place where the pump can
 *
 * Plain CPython API, one file: the build needs a C compiler and nothing else.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Below this many bytes the work is cheaper than letting other threads run meanwhile. */
#define RELEASE_GIL_FROM 65536

/* XOR n bytes of src into dst with the 4-byte key k (already turned): eight bytes at a
 * time through memcpy, which compilers turn into plain (vectorisable) loads and stores. */
static void
xor_mask(unsigned char *dst, const unsigned char *src, Py_ssize_t n, const unsigned char k[4])
{
    Py_ssize_t i = 0;
    uint64_t word;
    unsigned char k8[8] = {k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]};
    memcpy(&word, k8, 8);
    for (; i + 32 <= n; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, src + i, 8);
        memcpy(&b, src + i + 8, 8);
        memcpy(&c, src + i + 16, 8);
        memcpy(&d, src + i + 24, 8);
        a ^= word;
        b ^= word;
        c ^= word;
        d ^= word;
        memcpy(dst + i, &a, 8);
        memcpy(dst + i + 8, &b, 8);
        memcpy(dst + i + 16, &c, 8);
        memcpy(dst + i + 24, &d, 8);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t a;
        memcpy(&a, src + i, 8);
        a ^= word;
        memcpy(dst + i, &a, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ k[i & 3];
    }
}

/* The key as a C array, turned so that k[0] applies to the first byte. */
static int
get_key(PyObject *key, Py_ssize_t offset, unsigned char k[4])
{
    Py_buffer view;
    if (PyObject_GetBuffer(key, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (view.len != 4) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "a mask key is 4 bytes");
        return -1;
    }
    const unsigned char *raw = (const unsigned char *)view.buf;
    for (int j = 0; j < 4; j++) {
        k[j] = raw[(j + offset) & 3];
    }
    PyBuffer_Release(&view);
    return 0;
}

static PyObject *
speedups_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t offset = 0;
    unsigned char k[4];
    Py_buffer data;
    PyObject *result;

    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "mask(data, key, offset=0)");
        return NULL;
    }
    if (nargs == 3) {
        offset = PyLong_AsSsize_t(args[2]);
        if (offset == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    if (get_key(args[1], offset, k) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result != NULL) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        if (data.len >= RELEASE_GIL_FROM) {
            Py_BEGIN_ALLOW_THREADS
            xor_mask(out, (const unsigned char *)data.buf, data.len, k);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(out, (const unsigned char *)data.buf, data.len, k);
        }
    }
    PyBuffer_Release(&data);
    return result;
}

/* A client's frame (RFC 6455 section 5.2): header, key, masked payload, written once into
 * the bytes object that is returned. `first` is FIN, RSV and opcode. */
static PyObject *
speedups_masked_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned char k[4];
    Py_buffer payload;
    PyObject *result;
    long first;
    Py_ssize_t header;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "masked_frame(first, payload, key)");
        return NULL;
    }
    first = PyLong_AsLong(args[0]);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (first < 0 || first > 0xFF) {
        PyErr_SetString(PyExc_ValueError, "the first byte of a frame is 0 to 255");
        return NULL;
    }
    if (get_key(args[2], 0, k) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &payload, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint64_t length = (uint64_t)payload.len;
    header = length < 126 ? 2 : length < 65536 ? 4 : 10;
    if (payload.len > PY_SSIZE_T_MAX - 14) {
        PyBuffer_Release(&payload);
        return PyErr_NoMemory();
    }
    result = PyBytes_FromStringAndSize(NULL, header + 4 + payload.len);
    if (result != NULL) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        out[0] = (unsigned char)first;
        if (header == 2) {
            out[1] = (unsigned char)(0x80 | length);
        }
        else if (header == 4) {
            out[1] = 0xFE;
            out[2] = (unsigned char)(length >> 8);
            out[3] = (unsigned char)length;
        }
        else {
            out[1] = 0xFF;
            for (int j = 0; j < 8; j++) {
                out[2 + j] = (unsigned char)(length >> (56 - 8 * j));
            }
        }
        memcpy(out + header, k, 4);
        if (payload.len >= RELEASE_GIL_FROM) {
            Py_BEGIN_ALLOW_THREADS
            xor_mask(out + header + 4, (const unsigned char *)payload.buf, payload.len, k);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(out + header + 4, (const unsigned char *)payload.buf, payload.len, k);
        }
    }
    PyBuffer_Release(&payload);
    return result;
}

/* UTF-8 validation (RFC 3629 section 4), resumable between pieces of a message.
 *
 * The state between calls is 0 at a character boundary, otherwise
 * remaining | low << 8 | high << 16: how many continuation bytes are still due, and the
 * range the next one must fall in (narrower than 0x80-0xBF right after E0, ED, F0 and F4,
 * which is what refuses overlong forms, surrogates and code points above U+10FFFF at the
 * first byte that shows them). -1 means invalid. */
#define ASCII_MASK 0x8080808080808080ULL

static long
utf8_run(const unsigned char *s, Py_ssize_t n, long state)
{
    Py_ssize_t i = 0;
    unsigned int remaining = (unsigned int)(state & 0xFF);
    unsigned int low = (unsigned int)((state >> 8) & 0xFF);
    unsigned int high = (unsigned int)((state >> 16) & 0xFF);

    while (i < n) {
        unsigned int b;
        if (remaining) {
            b = s[i++];
            if (b < low || b > high) {
                return -1;
            }
            remaining--;
            low = 0x80;
            high = 0xBF;
            continue;
        }
        while (i + 16 <= n) {
            uint64_t a, c;
            memcpy(&a, s + i, 8);
            memcpy(&c, s + i + 8, 8);
            if ((a | c) & ASCII_MASK) {
                break;
            }
            i += 16;
        }
        if (i >= n) {
            break;
        }
        b = s[i++];
        if (b < 0x80) {
            continue;
        }
        if (b < 0xC2) {
            return -1; /* a continuation byte, or C0/C1 (overlong) */
        }
        low = 0x80;
        high = 0xBF;
        if (b < 0xE0) {
            remaining = 1;
        }
        else if (b < 0xF0) {
            remaining = 2;
            if (b == 0xE0) {
                low = 0xA0; /* overlong below U+0800 */
            }
            else if (b == 0xED) {
                high = 0x9F; /* UTF-16 surrogates */
            }
        }
        else if (b < 0xF5) {
            remaining = 3;
            if (b == 0xF0) {
                low = 0x90; /* overlong below U+10000 */
            }
            else if (b == 0xF4) {
                high = 0x8F; /* above U+10FFFF */
            }
        }
        else {
            return -1;
        }
    }
    if (!remaining) {
        return 0;
    }
    return (long)(remaining | (low << 8) | (high << 16));
}

static PyObject *
speedups_utf8_check(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long state = 0;
    Py_buffer data;

    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "utf8_check(data, state=0)");
        return NULL;
    }
    if (nargs == 2) {
        state = PyLong_AsLong(args[1]);
        if (state == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (state < 0 || (state & 0xFF) > 3 || (state & ~0xFFFFFFL)) {
            PyErr_SetString(PyExc_ValueError, "not a state utf8_check returned");
            return NULL;
        }
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (data.len >= RELEASE_GIL_FROM) {
        Py_BEGIN_ALLOW_THREADS
        state = utf8_run((const unsigned char *)data.buf, data.len, state);
        Py_END_ALLOW_THREADS
    }
    else {
        state = utf8_run((const unsigned char *)data.buf, data.len, state);
    }
    PyBuffer_Release(&data);
    return PyLong_FromLong(state);
}

/* Runs of small whole messages: each codec's whole_*_messages(data, pos, ..., max_size)
 * returns (messages, pos), the plain whole messages at `pos` (unmasked, text decoded to
 * str) and where the run stopped. A run ends at the first frame that is anything else (a
 * control frame, a fragment, an incomplete frame, 64 KiB or more, above max_size, invalid
 * text, anything wrong), for the codec's frame-by-frame parser to take, and to refuse with
 * its own error. */
#define STACK_TEXT 2048

typedef struct {
    Py_buffer view;
    Py_ssize_t pos;
    Py_ssize_t max_size; /* -1: any */
    PyObject *messages;
} Run;

/* Parse the arguments every run shares: data, pos and max_size (None: any). */
static int
run_open(Run *run, PyObject *data, PyObject *pos, PyObject *max_size)
{
    run->pos = PyLong_AsSsize_t(pos);
    if (run->pos == -1 && PyErr_Occurred()) {
        return -1;
    }
    run->max_size = -1;
    if (max_size != Py_None) {
        run->max_size = PyLong_AsSsize_t(max_size);
        if (run->max_size == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (run->max_size < 0) {
            PyErr_SetString(PyExc_ValueError, "max_size is not negative");
            return -1;
        }
    }
    if (PyObject_GetBuffer(data, &run->view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (run->pos < 0 || run->pos > run->view.len) {
        PyBuffer_Release(&run->view);
        PyErr_SetString(PyExc_ValueError, "pos is outside data");
        return -1;
    }
    run->messages = PyList_New(0);
    if (run->messages == NULL) {
        PyBuffer_Release(&run->view);
        return -1;
    }
    return 0;
}

/* Add the message of `length` bytes at `payload` (unmasked with `key` turned by `offset`
 * when there is one; text decoded) and move pos to `next`: 1 when added, 0 when the text is
 * invalid (the run ends before it), -1 on an error. */
static int
run_add(Run *run, const unsigned char *payload, Py_ssize_t length, const unsigned char *key, Py_ssize_t offset,
        int text, Py_ssize_t next)
{
    unsigned char k[4];
    PyObject *message;
    if (key != NULL) {
        for (int j = 0; j < 4; j++) {
            k[j] = key[(j + offset) & 3];
        }
    }
    if (!text) {
        message = PyBytes_FromStringAndSize(NULL, length);
        if (message == NULL) {
            return -1;
        }
        if (key != NULL) {
            xor_mask((unsigned char *)PyBytes_AS_STRING(message), payload, length, k);
        }
        else {
            memcpy(PyBytes_AS_STRING(message), payload, (size_t)length);
        }
    }
    else {
        unsigned char stack[STACK_TEXT];
        unsigned char *scratch = NULL;
        if (key != NULL) {
            scratch = length <= STACK_TEXT ? stack : (unsigned char *)PyMem_Malloc((size_t)length);
            if (scratch == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            xor_mask(scratch, payload, length, k);
            payload = scratch;
        }
        message = PyUnicode_DecodeUTF8((const char *)payload, length, "strict");
        if (scratch != NULL && scratch != stack) {
            PyMem_Free(scratch);
        }
        if (message == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                return -1;
            }
            PyErr_Clear();
            return 0;
        }
    }
    int failed = PyList_Append(run->messages, message);
    Py_DECREF(message);
    if (failed) {
        return -1;
    }
    run->pos = next;
    return 1;
}

/* The result, (messages, pos), or NULL after an error; the buffer is released either way. */
static PyObject *
run_close(Run *run, int failed)
{
    PyBuffer_Release(&run->view);
    if (failed) {
        Py_DECREF(run->messages);
        return NULL;
    }
    return Py_BuildValue("(Nn)", run->messages, run->pos);
}

/* whole_messages(data, pos, expect_mask, max_size): RFC 6455 framing (section 5.2): FIN
 * set, no RSV bit, text or binary, the MASK bit as expected, the shortest length encoding. */
static PyObject *
speedups_whole_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Run run;
    int expect_mask, added = 1;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "whole_messages(data, pos, expect_mask, max_size)");
        return NULL;
    }
    if ((expect_mask = PyObject_IsTrue(args[2])) < 0 || run_open(&run, args[0], args[1], args[3]) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)run.view.buf;
    const Py_ssize_t end = run.view.len;
    while (added > 0 && end - run.pos >= 2) {
        Py_ssize_t pos = run.pos;
        unsigned char first = data[pos], second = data[pos + 1];
        int opcode = first & 0x0F;
        if ((first & 0xF0) != 0x80 || (opcode != 1 && opcode != 2) || ((second & 0x80) != 0) != expect_mask) {
            break;
        }
        Py_ssize_t length = second & 0x7F, start = pos + 2;
        if (length == 127) {
            break; /* 64 KiB and more */
        }
        if (length == 126) {
            if (end - start < 2) {
                break;
            }
            length = (data[start] << 8) | data[start + 1];
            start += 2;
            if (length < 126) {
                break;
            }
        }
        const unsigned char *key = NULL;
        if (expect_mask) {
            if (end - start < 4) {
                break;
            }
            key = data + start;
            start += 4;
        }
        if ((run.max_size >= 0 && length > run.max_size) || end - start < length) {
            break;
        }
        added = run_add(&run, data + start, length, key, 0, opcode == 1, start + length);
    }
    return run_close(&run, added < 0);
}

/* whole_interim_messages(data, pos, more_bit, prefix_mask, max_size): the drafts hybi-01 to
 * -06: opcodes 4 (text) and 5 (binary); a final frame has 0x80 clear where `more_bit`
 * (01-03), set otherwise (04 on); with `prefix_mask` (a server of 05-06) a 4-byte key comes
 * first and masks the header and the payload after it. */
static PyObject *
speedups_whole_interim_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Run run;
    int more_bit, prefix_mask, added = 1;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "whole_interim_messages(data, pos, more_bit, prefix_mask, max_size)");
        return NULL;
    }
    if ((more_bit = PyObject_IsTrue(args[2])) < 0 || (prefix_mask = PyObject_IsTrue(args[3])) < 0
        || run_open(&run, args[0], args[1], args[4]) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)run.view.buf;
    const Py_ssize_t end = run.view.len;
    static const unsigned char no_key[4] = {0, 0, 0, 0};
    while (added > 0) {
        const unsigned char *key = no_key;
        Py_ssize_t start = run.pos;
        if (prefix_mask) {
            if (end - start < 6) {
                break;
            }
            key = data + start;
            start += 4;
        }
        else if (end - start < 2) {
            break;
        }
        unsigned char first = data[start] ^ key[0], second = data[start + 1] ^ key[1];
        int opcode = first & 0x0F;
        int final = more_bit ? !(first & 0x80) : (first & 0x80) != 0;
        if ((first & 0x70) || (second & 0x80) || (opcode != 4 && opcode != 5) || !final) {
            break;
        }
        Py_ssize_t length = second & 0x7F, header = 2;
        if (length == 127) {
            break;
        }
        if (length == 126) {
            if (end - start < 4) {
                break;
            }
            length = ((data[start + 2] ^ key[2]) << 8) | (data[start + 3] ^ key[3]);
            header = 4;
        }
        if ((run.max_size >= 0 && length > run.max_size) || end - start - header < length) {
            break;
        }
        added = run_add(&run, data + start + header, length, prefix_mask ? key : NULL, header, opcode == 4,
                        start + header + length);
    }
    return run_close(&run, added < 0);
}

/* whole_sentinel_messages(data, pos, max_size): hixie text frames (0x00, UTF-8, 0xFF); the
 * run ends at another frame type or at a frame whose 0xFF has not come. */
static PyObject *
speedups_whole_sentinel_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Run run;
    int added = 1;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "whole_sentinel_messages(data, pos, max_size)");
        return NULL;
    }
    if (run_open(&run, args[0], args[1], args[2]) < 0) {
        return NULL;
    }
    const unsigned char *data = (const unsigned char *)run.view.buf;
    const Py_ssize_t end = run.view.len;
    while (added > 0 && end - run.pos >= 2 && data[run.pos] == 0x00) {
        const unsigned char *text = data + run.pos + 1;
        const unsigned char *close = memchr(text, 0xFF, (size_t)(end - run.pos - 1));
        if (close == NULL || (run.max_size >= 0 && close - text > run.max_size)) {
            break;
        }
        added = run_add(&run, text, close - text, NULL, 0, 1, close + 1 - data);
    }
    return run_close(&run, added < 0);
}

/* PayloadBuilder(size): one bytes object of `size`, filled piece by piece (unmasked on the
 * way in) and handed out whole by take(). It is never seen by Python before it is full:
 * window() lends the part still missing as a writable memoryview of the builder (not of
 * the bytes), so that a transport can receive straight into it; filled() then unmasks what
 * landed there, in place. */
typedef struct {
    PyObject_HEAD
    PyObject *bytes; /* held until the builder goes, so that a window never dangles */
    Py_ssize_t size;
    Py_ssize_t pos;
    Py_ssize_t exports; /* windows (buffer views) not yet released */
    int taken;
    int text;   /* check the pieces as UTF-8 as they come */
    long utf8;  /* utf8_run's state after the pieces so far */
} Builder;

/* Recycled payloads. A fresh buffer of a megabyte costs the kernel 256 page faults (and
 * zeroing each page) every time the C library hands the memory back in between, which it
 * does for buffers this large: that cost more than the unmasking itself. So the payloads
 * handed out by take() are remembered here, and one that nothing else refers to any more
 * (reference count 1: only this pool, so no one can see it change) is filled again by the
 * next builder of a size it can take. At most POOL_SLOTS objects of POOL_LARGEST bytes each
 * are held, and at most POOL_BUDGET bytes in all: what stays idle after a burst of large
 * messages is bounded, and a payload is never recycled while a transport still holds it. */
#define POOL_SLOTS 8
#define POOL_LARGEST (4 << 20)
#define POOL_BUDGET (8 << 20)
static PyObject *pool[POOL_SLOTS];

static Py_ssize_t
pool_size(void)
{
    Py_ssize_t total = 0;
    for (int i = 0; i < POOL_SLOTS; i++) {
        if (pool[i] != NULL) {
            total += PyBytes_GET_SIZE(pool[i]);
        }
    }
    return total;
}

/* A bytes object of `size` for a builder to fill: an idle pooled one when one fits (the
 * smallest from `size` to twice it, shrunk to fit), else a new one. */
static PyObject *
pool_get(Py_ssize_t size)
{
    int best = -1;
    if (size <= POOL_LARGEST) {
        for (int i = 0; i < POOL_SLOTS; i++) {
            PyObject *candidate = pool[i];
            if (candidate != NULL && Py_REFCNT(candidate) == 1 && PyBytes_GET_SIZE(candidate) >= size
                && PyBytes_GET_SIZE(candidate) / 2 <= size
                && (best < 0 || PyBytes_GET_SIZE(candidate) < PyBytes_GET_SIZE(pool[best]))) {
                best = i;
            }
        }
    }
    if (best < 0) {
        return PyBytes_FromStringAndSize(NULL, size);
    }
    PyObject *reused = pool[best];
    pool[best] = NULL;
    if (PyBytes_GET_SIZE(reused) != size && _PyBytes_Resize(&reused, size) < 0) {
        return NULL;
    }
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    ((PyBytesObject *)reused)->ob_shash = -1; /* its contents change: forget its hash */
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    return reused;
}

/* Remember a payload handed out, in a free slot or in place of an idle one. */
static void
pool_keep(PyObject *payload)
{
    Py_ssize_t size = PyBytes_GET_SIZE(payload);
    int slot = -1;
    if (size > POOL_LARGEST) {
        return;
    }
    for (int i = 0; i < POOL_SLOTS && slot < 0; i++) {
        if (pool[i] == NULL) {
            slot = i;
        }
    }
    for (int i = 0; i < POOL_SLOTS && slot < 0; i++) {
        if (Py_REFCNT(pool[i]) == 1) {
            slot = i;
        }
    }
    if (slot < 0) {
        return; /* every slot's payload is still in use */
    }
    Py_CLEAR(pool[slot]);
    if (pool_size() + size > POOL_BUDGET) {
        for (int i = 0; i < POOL_SLOTS && pool_size() + size > POOL_BUDGET; i++) {
            if (pool[i] != NULL && Py_REFCNT(pool[i]) == 1) {
                Py_CLEAR(pool[i]);
            }
        }
        if (pool_size() + size > POOL_BUDGET) {
            return;
        }
    }
    Py_INCREF(payload);
    pool[slot] = payload;
}

static PyObject *
speedups_release_pool(PyObject *module, PyObject *unused)
{
    for (int i = 0; i < POOL_SLOTS; i++) {
        Py_CLEAR(pool[i]);
    }
    Py_RETURN_NONE;
}

static int
builder_init(Builder *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t size;
    int text = 0;
    static char *kwlist[] = {"size", "text", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|p", kwlist, &size, &text)) {
        return -1;
    }
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "a payload size is not negative");
        return -1;
    }
    if (self->exports) {
        PyErr_SetString(PyExc_BufferError, "a window of the payload is still lent");
        return -1;
    }
    Py_CLEAR(self->bytes);
    self->bytes = pool_get(size);
    if (self->bytes == NULL) {
        return -1;
    }
    self->size = size;
    self->pos = 0;
    self->taken = 0;
    self->text = text;
    self->utf8 = 0;
    return 0;
}

static void
builder_dealloc(Builder *self)
{
    Py_CLEAR(self->bytes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
builder_add(Builder *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t offset = 0;
    unsigned char k[4];
    int masked;
    Py_buffer data;

    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "add(data, key=None, offset=0)");
        return NULL;
    }
    if (self->bytes == NULL || self->taken) {
        PyErr_SetString(PyExc_ValueError, "the payload was taken already");
        return NULL;
    }
    if (nargs == 3) {
        offset = PyLong_AsSsize_t(args[2]);
        if (offset == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    masked = nargs >= 2 && args[1] != Py_None;
    if (masked && get_key(args[1], offset, k) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (data.len > self->size - self->pos) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "more bytes than the payload's size");
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(self->bytes) + self->pos;
    if (masked) {
        xor_mask(out, (const unsigned char *)data.buf, data.len, k);
    }
    else {
        memcpy(out, data.buf, (size_t)data.len);
    }
    self->pos += data.len;
    PyBuffer_Release(&data);
    if (self->text && self->utf8 >= 0) {
        self->utf8 = utf8_run(out, data.len, self->utf8);
    }
    return PyBool_FromLong(self->utf8 >= 0);
}

static PyObject *
builder_take(Builder *self, PyObject *unused)
{
    if (self->bytes == NULL || self->taken) {
        PyErr_SetString(PyExc_ValueError, "the payload was taken already");
        return NULL;
    }
    if (self->pos != self->size) {
        PyErr_SetString(PyExc_ValueError, "the payload is not complete");
        return NULL;
    }
    self->taken = 1;
    pool_keep(self->bytes);
    Py_INCREF(self->bytes);
    return self->bytes;
}

static PyObject *
builder_missing(Builder *self, void *closure)
{
    return PyLong_FromSsize_t(self->bytes == NULL || self->taken ? 0 : self->size - self->pos);
}

/* The buffer protocol: the missing part, writable, while the payload is not complete. */
static int
builder_getbuffer(Builder *self, Py_buffer *view, int flags)
{
    if (self->bytes == NULL || self->taken || self->pos == self->size) {
        PyErr_SetString(PyExc_BufferError, "no part of the payload is missing");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, PyBytes_AS_STRING(self->bytes) + self->pos,
                          self->size - self->pos, 0, flags) < 0) {
        return -1;
    }
    self->exports++;
    return 0;
}

static void
builder_releasebuffer(Builder *self, Py_buffer *view)
{
    self->exports--;
}

static PyBufferProcs builder_as_buffer = {
    .bf_getbuffer = (getbufferproc)builder_getbuffer,
    .bf_releasebuffer = (releasebufferproc)builder_releasebuffer,
};

static PyObject *
builder_window(Builder *self, PyObject *unused)
{
    return PyMemoryView_FromObject((PyObject *)self);
}

static PyObject *
builder_filled(Builder *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t count, offset = 0;
    unsigned char k[4];

    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "filled(count, key=None, offset=0)");
        return NULL;
    }
    if (self->bytes == NULL || self->taken) {
        PyErr_SetString(PyExc_ValueError, "the payload was taken already");
        return NULL;
    }
    count = PyLong_AsSsize_t(args[0]);
    if (count == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (count < 0 || count > self->size - self->pos) {
        PyErr_SetString(PyExc_ValueError, "more bytes than the payload's size");
        return NULL;
    }
    if (nargs == 3) {
        offset = PyLong_AsSsize_t(args[2]);
        if (offset == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(self->bytes) + self->pos;
    if (nargs >= 2 && args[1] != Py_None) {
        if (get_key(args[1], offset, k) < 0) {
            return NULL;
        }
        xor_mask(out, out, count, k);
    }
    self->pos += count;
    if (self->text && self->utf8 >= 0) {
        self->utf8 = utf8_run(out, count, self->utf8);
    }
    return PyBool_FromLong(self->utf8 >= 0);
}

static PyMethodDef builder_methods[] = {
    {"add", (PyCFunction)(void (*)(void))builder_add, METH_FASTCALL,
     "add(data, key=None, offset=0) -> bool: append data, unmasked with key turned by offset;\n"
     "False once a text payload shows invalid UTF-8."},
    {"take", (PyCFunction)builder_take, METH_NOARGS, "take() -> bytes: the whole payload, once."},
    {"window", (PyCFunction)builder_window, METH_NOARGS,
     "window() -> memoryview: the missing part, writable, to be followed by filled()."},
    {"filled", (PyCFunction)(void (*)(void))builder_filled, METH_FASTCALL,
     "filled(count, key=None, offset=0) -> bool: count bytes were written at the window's\n"
     "start; unmask them in place. False once a text payload shows invalid UTF-8."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef builder_getset[] = {
    {"missing", (getter)builder_missing, NULL, "bytes still to add", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject BuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "hybi._speedups.PayloadBuilder",
    .tp_basicsize = sizeof(Builder),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "PayloadBuilder(size, text=False): a payload assembled in place from its pieces.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)builder_init,
    .tp_dealloc = (destructor)builder_dealloc,
    .tp_methods = builder_methods,
    .tp_getset = builder_getset,
    .tp_as_buffer = &builder_as_buffer,
};

static int
speedups_exec(PyObject *module)
{
    if (PyType_Ready(&BuilderType) < 0) {
        return -1;
    }
    Py_INCREF(&BuilderType);
    if (PyModule_AddObject(module, "PayloadBuilder", (PyObject *)&BuilderType) < 0) {
        Py_DECREF(&BuilderType);
        return -1;
    }
    return 0;
}

static PyMethodDef speedups_methods[] = {
    {"mask", (PyCFunction)(void (*)(void))speedups_mask, METH_FASTCALL,
     "mask(data, key, offset=0) -> bytes: data XORed with the 4-byte key, turned by offset."},
    {"masked_frame", (PyCFunction)(void (*)(void))speedups_masked_frame, METH_FASTCALL,
     "masked_frame(first, payload, key) -> bytes: a client frame, masked with key."},
    {"whole_messages", (PyCFunction)(void (*)(void))speedups_whole_messages, METH_FASTCALL,
     "whole_messages(data, pos, expect_mask, max_size) -> (messages, pos): the run of plain\n"
     "whole RFC 6455 messages at pos, unmasked, text decoded."},
    {"whole_interim_messages", (PyCFunction)(void (*)(void))speedups_whole_interim_messages, METH_FASTCALL,
     "whole_interim_messages(data, pos, more_bit, prefix_mask, max_size) -> (messages, pos):\n"
     "as whole_messages, in the framing of the drafts hybi-01 to -06."},
    {"whole_sentinel_messages", (PyCFunction)(void (*)(void))speedups_whole_sentinel_messages, METH_FASTCALL,
     "whole_sentinel_messages(data, pos, max_size) -> (messages, pos): the run of whole hixie\n"
     "text frames at pos, decoded."},
    {"release_pool", (PyCFunction)speedups_release_pool, METH_NOARGS,
     "release_pool() -> None: drop the payload buffers kept for reuse."},
    {"utf8_check", (PyCFunction)(void (*)(void))speedups_utf8_check, METH_FASTCALL,
     "utf8_check(data, state=0) -> int: the state after data (0 at a boundary), -1 if invalid."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
#ifdef Py_mod_multiple_interpreters
    /* the payload pool is one per process */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "hybi._speedups",
    .m_doc = "Compiled twins of hybi.sansio._pure: masking, client frames, UTF-8 checks.",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
