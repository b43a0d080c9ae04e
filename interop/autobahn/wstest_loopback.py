"""Run Autobahn|Testsuite's wstest with every listening socket bound to 127.0.0.1.

wstest's fuzzingserver listens on every interface whatever host its spec's URL names
(autobahn 0.10.9's listenWS binds to ''), so this binds each listenTCP and listenSSL to the
loopback interface before handing the command line to wstest. Its web page server is off
when --webport 0 is given, as run.py does.

It also gives autobahn's UTF-8 validator a fast path. wstest validates every text message
it receives, and on the text cases of 12.* and 13.* (1000 echoes of up to 128 KiB each)
that took most of its time: wsaccel's validator loops through Python objects, about as
slowly as autobahn's own. A chunk that starts on a code point boundary and that Python's
UTF-8 decoder (C) accepts, without encoded surrogates (0xED 0xA0..0xBF, the one thing that
decoder lets through and strict UTF-8 does not), is valid and ends on a boundary: the
answer is then the one the validator would give, without running it. Any other chunk goes
to the validator itself, which so still decides every invalid or split sequence.

It runs under the private Python 2.7 that scripts/install-autobahn.sh installs, so it is
written in the syntax both Pythons share, with type comments instead of annotations.
"""

import re
import sys

from autobahn.websocket import protocol as websocket_protocol
from autobahntestsuite import wstest  # installs the epoll reactor first, as wstest's own script does
from twisted.internet import reactor

LOOPBACK = "127.0.0.1"

_listen_tcp = reactor.listenTCP
_listen_ssl = reactor.listenSSL


def listen_tcp(port, factory, backlog=50, interface=""):
    # type: (int, object, int, str) -> object
    return _listen_tcp(port, factory, backlog, LOOPBACK)


def listen_ssl(port, factory, context_factory, backlog=50, interface=""):
    # type: (int, object, object, int, str) -> object
    return _listen_ssl(port, factory, context_factory, backlog, LOOPBACK)


reactor.listenTCP = listen_tcp
reactor.listenSSL = listen_ssl

# autobahn's validator as autobahn picked it: wsaccel's, or its own in pure Python.
Validator = websocket_protocol.Utf8Validator
# An encoded UTF-16 surrogate (U+D800..U+DFFF): 0xED, then 0xA0..0xBF.
SURROGATE = re.compile(b"\xed[\xa0-\xbf]")
ACCEPT = 0  # the validator's state between code points, in both implementations


class FastUtf8Validator(Validator):
    def validate(self, buf):
        # type: (bytes) -> tuple[bool, bool, int, int]
        if self.state == ACCEPT and isinstance(buf, bytes):
            try:
                buf.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                if not SURROGATE.search(buf):
                    self.i += len(buf)
                    return True, True, len(buf), self.i
        return Validator.validate(self, buf)


websocket_protocol.Utf8Validator = FastUtf8Validator

if __name__ == "__main__":
    sys.argv[0] = "wstest"
    wstest.run()
