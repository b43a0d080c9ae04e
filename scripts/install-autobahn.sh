#!/usr/bin/env bash
# Installs Autobahn|Testsuite (wstest, the WebSocket conformance suite; Python 2.7 only)
# into a private folder outside the repository, by default
# ${XDG_CACHE_HOME:-$HOME/.cache}/hybi/autobahn (HYBI_AUTOBAHN_HOME overrides it).
#
# Debian 12 has no Python 2.7, so the interpreter comes from Debian 11's packages, fetched
# with a private apt configuration (the machine's own apt sources, lists and caches are
# left alone) and unpacked with dpkg-deb -x. Its packages then come from PyPI through
# pip 20.3.4, every version pinned below. One is compiled, with the machine's gcc: wsaccel,
# autobahn's C accelerator (see WSACCEL_VERSION); without a working C compiler the install
# goes on without it and says so.
#
# Afterwards $HOME_DIR/bin/wstest runs the suite and $HOME_DIR/bin/python2.7 the interpreter.
# Running it again is a quick no-op while the pins below are unchanged.
#
# Debian mirror: the one the machine's apt sources use for Debian 12 (HYBI_DEBIAN_MIRROR and
# HYBI_DEBIAN_SECURITY_MIRROR override it, e.g. with an archive mirror once bullseye has
# been moved off the regular ones).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

HOME_DIR=${HYBI_AUTOBAHN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/hybi/autobahn}

# Debian 11 (bullseye) packages that make a working python2.7, unpacked privately.
SUITE=bullseye
# The interpreter and its standard library (2.7.18, the last Python 2 release).
DEBS=(python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib)
# Libraries the standard library links against whose sonames Debian 12 no longer ships:
# libffi.so.7 (ctypes, needed by cffi and so cryptography) and libssl/libcrypto 1.1
# (ssl and hashlib, needed by pip to reach PyPI and by Twisted's TLS module, which the
# suite imports).
DEBS+=(libffi7 libssl1.1)
# Libraries of Debian 12 that its python2.7 links against too, fetched from Debian 11 only
# when the machine lacks them (a minimal container may): soname, then package.
OPTIONAL_LIBS=(
    "libexpat.so.1 libexpat1"
    "libbz2.so.1.0 libbz2-1.0"
    "libsqlite3.so.0 libsqlite3-0"
    "libz.so.1 zlib1g"
)

# pip: 20.3.4 is the last release that runs on Python 2.7.
PIP_VERSION=20.3.4
# Twisted at the version Autobahn|Testsuite's requirements pin. It is published as source
# only (no Linux wheel for any Python) and is built below without its optional C modules.
TWISTED_VERSION=19.10.0
# Published as plain Python sources only, nothing to compile: Autobahn|Testsuite itself,
# and the autobahn library of 2015 (with its txaio) that its code is written against, at
# the versions its own requirements.txt pins.
SOURCES=(
    autobahntestsuite==25.10.1
    autobahn==0.10.9
    txaio==2.1.0
)
# Everything else, as wheels only (--no-deps: this list is the whole dependency tree, so
# nothing moves when a newer release appears).
WHEELS=(
    # Build tools for the Twisted wheel; setuptools is also pinned by the suite's
    # requirements (pkg_resources finds its templates at run time) and 44 is the last for
    # Python 2; wheel 0.37.1 is the last for Python 2.
    setuptools==44.0.0
    wheel==0.37.1
    # Pinned by autobahntestsuite 25.10.1's own requirements.txt.
    incremental==16.10.1
    zope.interface==4.6.0
    six==1.16.0
    pyOpenSSL==19.1.0
    cryptography==3.3.2
    service_identity==18.1.0
    klein==17.10.0
    Werkzeug==1.0.1
    Jinja2==2.11.3
    MarkupSafe==1.1.1
    unittest2==1.1.0
    # Twisted 19.10's own requirements, at releases of late 2019 (Twisted's time) that
    # satisfy it and everything above: attrs and Automat (Automat 0.8 needs attrs>=19.2),
    # constantly, hyperlink with idna, and PyHamcrest (Twisted excludes 1.10.0).
    attrs==19.3.0
    Automat==0.8.0
    constantly==15.1.0
    hyperlink==19.0.0
    idna==2.8
    PyHamcrest==1.9.0
    # cryptography 3.3.2's requirements on Python 2: cffi and pycparser at their last
    # releases for Python 2 (cffi 1.15.1 has wheels for this interpreter), and the
    # back-ports enum34 and ipaddress.
    cffi==1.15.1
    pycparser==2.21
    enum34==1.1.10
    ipaddress==1.0.23
    # service_identity 18.1.0's ASN.1 parsers, at their last releases for Python 2.
    pyasn1==0.4.8
    pyasn1-modules==0.2.8
    # unittest2 1.1.0's back-ports (its argparse requirement is in Python 2.7 itself).
    traceback2==1.4.0
    linecache2==1.0.0
    # Left out on purpose: ujson, the other half of autobahn's "accelerate" extra, which
    # only its WAMP serializers use (wstest's WebSocket cases do not).
)

# wsaccel, the C versions of the two loops that autobahn otherwise runs in Python over
# every byte: the XOR masking of each frame and the UTF-8 validation of each text message
# (autobahn/websocket/xormasker.py and utf8validator.py import it when they can). Its
# masking is real C; its validator, though, loops over a memoryview through Python objects
# (Cython 0.29 does not compile that enumerate into C), about as slowly as autobahn's own:
# interop/autobahn/wstest_loopback.py gives it a fast path, which is what makes the text
# cases of 12.* and 13.* fast. With it, wsaccel's masking saves about 10% of the time of
# the largest compression cases (12.1.10 and 13.3.10 in both roles: 8.5 s instead of 9.4).
# 0.6.3 is the last release for Python 2 (0.6.4's setup.py no longer runs on it) and is
# published as source only, with the C files that Cython 0.29 generated, so setuptools 44
# builds it without Cython. It builds against Python 2.7's headers, from
# Debian 11's libpython2.7-dev, unpacked privately for the build and removed after it
# (python2.7-dev would only add the python2.7-config link). Without a working C compiler
# (gcc, with libc6-dev), wstest runs in pure Python, as before.
WSACCEL_VERSION=0.6.3
HEADER_DEBS=(libpython2.7-dev)

# What is installed: a change of any pin above reinstalls everything. To an install
# without wsaccel (made without a C compiler, or before wsaccel was added: its fingerprint
# is fingerprint_base) wsaccel is added in place once a compiler is there, which leaves a
# wstest running from it alone.
fingerprint_base="$SUITE ${DEBS[*]} pip==$PIP_VERSION Twisted==$TWISTED_VERSION ${SOURCES[*]} ${WHEELS[*]}"
fingerprint_accel="$fingerprint_base wsaccel==$WSACCEL_VERSION ${HEADER_DEBS[*]}"
fingerprint_plain="$fingerprint_base without wsaccel"

say() { echo "install-autobahn: $*"; }
die() {
    echo "install-autobahn: $*" >&2
    exit 1
}
no_compiler() {
    echo "install-autobahn: no working C compiler (gcc with libc6-dev; e.g. apt-get install gcc):" \
        "wsaccel is not built, wstest masks frames in pure Python, a little more slowly" >&2
}

# Whether gcc can build a Python extension: compile and link a shared object that uses
# the C headers wsaccel's sources include.
compiler_works() {
    command -v gcc >/dev/null 2>&1 || return 1
    local probe status
    probe=$(mktemp -d)
    printf '#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\nint probe(void) { return 0; }\n' >"$probe/probe.c"
    gcc -shared -fPIC -o "$probe/probe.so" "$probe/probe.c" >/dev/null 2>&1 && status=0 || status=1
    rm -rf "$probe"
    return "$status"
}

mkdir -p "$HOME_DIR"
# One install at a time (make -j, or tests started in parallel).
exec 9>"$HOME_DIR/.lock"
flock 9

installed=""
if [ -x "$HOME_DIR/bin/wstest" ]; then installed=$(cat "$HOME_DIR/.installed" 2>/dev/null || true); fi
if [ "$installed" = "$fingerprint_accel" ]; then
    say "already installed in $HOME_DIR"
    exit 0
fi
accel=1
compiler_works || accel=""
# full: everything from scratch; wsaccel: only wsaccel, added to an install without it.
mode=full
if [ "$installed" = "$fingerprint_plain" ] || [ "$installed" = "$fingerprint_base" ]; then
    if [ -z "$accel" ]; then
        no_compiler
        say "already installed in $HOME_DIR (without wsaccel)"
        exit 0
    fi
    mode=wsaccel
    say "adding wsaccel to the install in $HOME_DIR"
    rm -rf "${HOME_DIR:?}/build"
else
    say "installing into $HOME_DIR"
    rm -rf "${HOME_DIR:?}/apt" "${HOME_DIR:?}/python" "${HOME_DIR:?}/site" "${HOME_DIR:?}/bin" "${HOME_DIR:?}/build" "${HOME_DIR:?}/.installed"
fi

for tool in apt-get dpkg-deb flock; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed (this script expects Debian 12)"
done

# The mirror the machine's own apt sources name for Debian itself (path ending in /debian)
# or for its security updates (/debian-security), from deb822 .sources or one-line .list files.
machine_mirror() {
    local path=$1
    {
        sed -n 's/^[[:space:]]*URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
        sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
    } | sed 's:/*$::' | grep -E "/$path\$" | head -n 1 || true
}
mirror=${HYBI_DEBIAN_MIRROR:-$(machine_mirror debian)}
security_mirror=${HYBI_DEBIAN_SECURITY_MIRROR:-$(machine_mirror debian-security)}
[ -n "$mirror" ] || die "no Debian mirror found in the machine's apt sources: set HYBI_DEBIAN_MIRROR"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || die "$keyring is missing (package debian-archive-keyring)"

# A private apt: its own sources, lists, caches and (empty) package status; the machine's
# apt.conf.d is still read (proxies), but none of its hooks run after our update.
apt_dir="$HOME_DIR/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" \
    "$apt_dir/preferences.d" "$apt_dir/debs"
: >"$apt_dir/status"
{
    echo "deb [signed-by=$keyring] $mirror $SUITE main"
    if [ -n "$security_mirror" ]; then echo "deb [signed-by=$keyring] $security_mirror $SUITE-security main"; fi
} >"$apt_dir/sources.list"
cat >"$apt_dir/apt.conf" <<EOF
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear DPkg::Pre-Invoke;
#clear DPkg::Post-Invoke;
Dir::Etc::SourceList "$apt_dir/sources.list";
Dir::Etc::SourceParts "$apt_dir/sources.list.d";
Dir::Etc::Preferences "$apt_dir/preferences";
Dir::Etc::PreferencesParts "$apt_dir/preferences.d";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir/cache";
Dir::Cache::Archives "$apt_dir/cache/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT::Sandbox::User "root";
Acquire::Languages "none";
EOF
private_apt() { apt-get -q -c "$apt_dir/apt.conf" "$@"; }

if [ "$mode" = full ]; then wanted="python2.7${accel:+ and its headers}"; else wanted="python2.7's headers"; fi
say "fetching Debian $SUITE's $wanted from $mirror"
private_apt update >"$apt_dir/update.log" 2>&1 || {
    cat "$apt_dir/update.log" >&2
    die "could not read Debian $SUITE from $mirror (moved to the archive? set HYBI_DEBIAN_MIRROR)"
}
if [ "$mode" = full ]; then
    debs=("${DEBS[@]}")
    for entry in "${OPTIONAL_LIBS[@]}"; do
        read -r soname package <<<"$entry"
        if ! /sbin/ldconfig -p 2>/dev/null | grep -q "[[:space:]]$soname "; then debs+=("$package"); fi
    done
    (cd "$apt_dir/debs" && private_apt download "${debs[@]}" >"$apt_dir/download.log" 2>&1) || {
        cat "$apt_dir/download.log" >&2
        die "apt-get download failed"
    }
    mkdir -p "$HOME_DIR/python"
    for deb in "$apt_dir"/debs/*.deb; do
        dpkg-deb -x "$deb" "$HOME_DIR/python"
    done
    (cd "$apt_dir/debs" && ls) >"$HOME_DIR/python/debs.txt"
fi
# Python 2.7's headers, for building wsaccel only: unpacked beside it, removed afterwards.
build="$HOME_DIR/build"
headers="$build/headers"
if [ -n "$accel" ]; then
    mkdir -p "$apt_dir/header-debs" "$headers"
    (cd "$apt_dir/header-debs" && private_apt download "${HEADER_DEBS[@]}" >"$apt_dir/download.log" 2>&1) || {
        cat "$apt_dir/download.log" >&2
        die "apt-get download failed"
    }
    for deb in "$apt_dir"/header-debs/*.deb; do
        dpkg-deb -x "$deb" "$headers"
    done
fi
rm -rf "$apt_dir/lists" "$apt_dir/cache" "$apt_dir/debs" "$apt_dir/header-debs"

# The interpreter, run through a wrapper that points it at its private standard library
# and libraries; packages go to its user site folder (a real site folder, .pth files work).
py27="$HOME_DIR/bin/python2.7"
if [ "$mode" = full ]; then
    mkdir -p "$HOME_DIR/bin"
    cat >"$HOME_DIR/bin/python2.7" <<'EOF'
#!/bin/sh
home=$(cd "$(dirname "$0")/.." && pwd)
root="$home/python"
libs=$(find "$root/usr/lib" "$root/lib" -maxdepth 1 -type d -name '*-linux-gnu*' 2>/dev/null | tr '\n' ':')
export PYTHONHOME="$root/usr" PYTHONUSERBASE="$home/site" PYTHONIOENCODING=utf-8
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:-}"
unset PYTHONPATH PYTHONSTARTUP PYTHONNOUSERSITE
exec "$root/usr/bin/python2.7" "$@"
EOF
    cat >"$HOME_DIR/bin/wstest" <<'EOF'
#!/bin/sh
exec "$(dirname "$0")/python2.7" -c 'import sys; sys.argv[0] = "wstest"; from autobahntestsuite.wstest import run; run()' "$@"
EOF
    chmod +x "$HOME_DIR/bin/python2.7" "$HOME_DIR/bin/wstest"
    "$py27" -c 'import ssl, hashlib, ctypes, zlib, pyexpat, bz2, sqlite3, json' ||
        die "the private python2.7 lacks a module it needs (missing library?)"
    say "$("$py27" -c 'import sys, ssl; print("Python %s, %s" % (sys.version.split()[0], ssl.OPENSSL_VERSION))')"
fi

# pip 20.3.4 as a wheel, fetched with a Python 3 pip (the project's venv when there is one)
# and run from the wheel by python2.7.
python3=""
for candidate in "${HYBI_PYTHON3:-}" "$repo/.venv/bin/python" python3; do
    if [ -n "$candidate" ] && "$candidate" -m pip --version >/dev/null 2>&1; then
        python3=$candidate
        break
    fi
done
[ -n "$python3" ] || die "a Python 3 with pip is needed to fetch pip $PIP_VERSION (set HYBI_PYTHON3)"
mkdir -p "$build"
"$python3" -m pip download --quiet --disable-pip-version-check "pip==$PIP_VERSION" --no-deps \
    --only-binary=:all: --python-version 2.7 -d "$build"
# Twisted's source too (pip 20.3.4's own download command stops with an AssertionError here).
if [ "$mode" = full ]; then
    "$python3" -m pip download --quiet --disable-pip-version-check "Twisted==$TWISTED_VERSION" --no-deps \
        --no-binary=:all: -d "$build"
fi
pip_wheel="$build/pip-$PIP_VERSION-py2.py3-none-any.whl"
[ -f "$pip_wheel" ] || die "pip $PIP_VERSION was not downloaded"
# pip's own certificate bundle is of 2020: trust the machine's when it has one.
if [ -z "${PIP_CERT:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1
# Into python2.7's user site folder (in $HOME_DIR/site, see the wrapper), exactly the pins
# given; no cache: the machine's pip cache belongs to its Python 3 pips.
pip27_install() {
    "$py27" "$pip_wheel/pip" install --quiet --user --no-deps --no-cache-dir --no-warn-script-location "$@"
}

if [ "$mode" = full ]; then
    say "installing ${#WHEELS[@]} wheels"
    pip27_install --only-binary=:all: "${WHEELS[@]}"

    # Twisted: build a wheel of its Python sources alone. Its setup.py would compile two
    # optional C modules (a test helper and sendmsg for UNIX sockets, neither used here),
    # which needs Python 2.7's headers and a compiler.
    say "building Twisted $TWISTED_VERSION without its optional C modules"
    "$py27" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
        "$build/Twisted-$TWISTED_VERSION.tar.bz2" "$build"
    (
        cd "$build/Twisted-$TWISTED_VERSION"
        "$py27" setup.py build_py && "$py27" setup.py bdist_wheel --skip-build -d "$build/wheels"
    ) >"$build/twisted.log" 2>&1 || {
        cat "$build/twisted.log" >&2
        die "building Twisted failed"
    }
    pip27_install "$build"/wheels/Twisted-"$TWISTED_VERSION"-*.whl

    say "installing ${SOURCES[*]}"
    pip27_install --no-binary=:all: "${SOURCES[@]}"
fi

fingerprint=$fingerprint_plain
if [ -n "$accel" ]; then
    # Debian's python2.7 names its compiler x86_64-linux-gnu-gcc and its headers
    # /usr/include/python2.7: the machine's gcc, and the headers unpacked above (whose
    # pyconfig.h includes <x86_64-linux-gnu/python2.7/pyconfig.h>), instead.
    say "building wsaccel $WSACCEL_VERSION with $(gcc --version | head -n 1)"
    CC="gcc -pthread" LDSHARED="gcc -pthread -shared" \
        CFLAGS="-I$headers/usr/include/python2.7 -I$headers/usr/include" \
        pip27_install --no-binary=:all: "wsaccel==$WSACCEL_VERSION" >"$build/wsaccel.log" 2>&1 || {
        cat "$build/wsaccel.log" >&2
        die "building wsaccel failed"
    }
    fingerprint=$fingerprint_accel
else
    no_compiler
fi
rm -rf "$build"

"$py27" -c 'import autobahntestsuite.fuzzing' || die "wstest does not import"
say "$("$py27" -c 'import autobahntestsuite, autobahn, twisted; print("autobahntestsuite %s, autobahn %s, Twisted %s" % (autobahntestsuite.version, autobahn.version, twisted.__version__))')"
# Which masking and UTF-8 validation autobahn picked, as wstest prints them when it starts.
implementations=$("$py27" -c 'from autobahn.websocket import utf8validator, xormasker; print("%s, %s" % (utf8validator.Utf8Validator.__module__, xormasker.XorMaskerNull.__module__))')
say "autobahn's UTF-8 validator and XOR masker: $implementations"
if [ -n "$accel" ] && [ "$implementations" != "wsaccel.utf8validator, wsaccel.xormask" ]; then
    die "wsaccel was built, but autobahn does not use it"
fi
echo "$fingerprint" >"$HOME_DIR/.installed"
say "wstest is $HOME_DIR/bin/wstest"
