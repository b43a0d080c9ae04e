"""Run Autobahn|Testsuite's wstest with every listening socket bound to 127.0.0.1.

wstest's fuzzingserver listens on every interface whatever host its spec's URL names
(autobahn 0.10.9's listenWS binds to ''), so this binds each listenTCP and listenSSL to the
loopback interface before handing the command line to wstest. Its web page server is off
when --webport 0 is given, as run.py does.

It runs under the private Python 2.7 that scripts/install-autobahn.sh installs, so it is
written in the syntax both Pythons share, with type comments instead of annotations.
"""

import sys

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

if __name__ == "__main__":
    sys.argv[0] = "wstest"
    wstest.run()
