#!/usr/bin/perl
# A WebSocket client built on Perl's Protocol::WebSocket 0.26 (Debian
# libprotocol-websocket-perl), the packaged client for hixie-75 and hixie-76 / hybi-00.
#
# It drives Protocol::WebSocket::Handshake::Client and Protocol::WebSocket::Frame, both
# given the version, over a plain socket. The wrappers above them lose the version:
# Protocol::WebSocket::Client builds its handshake without it (so it always asks for 13),
# and AnyEvent::WebSocket::Client 0.54 builds every frame without it (so it sends RFC 6455
# frames on a hixie connection).
#
# Sends ASCII text messages of several lengths and one UTF-8 message, checks each echo,
# then closes (or, with "server-close", asks the server to close). Prints one JSON line.
#
#   perl client.pl URL draft-hixie-75|draft-ietf-hybi-00|draft-ietf-hybi-10|draft-ietf-hybi-17 [server-close]
use strict;
use warnings;
use Encode ();
use IO::Socket::INET;
use JSON::PP;
use Protocol::WebSocket::Frame;
use Protocol::WebSocket::Handshake::Client;

my ($url, $version, $mode) = @ARGV;
$mode ||= "";
$| = 1;

sub report { print JSON::PP->new->canonical->encode($_[0]), "\n"; }

$SIG{ALRM} = sub { report({event => "timeout"}); exit 3; };
alarm 20;

my @messages = map { join("", map { chr(97 + $_ % 26) } 0 .. $_ - 1) } (0, 1, 125, 126, 127, 65535, 65536, 300000);
push @messages, "h\xc3\xa9llo w\xc3\xb6rld";    # UTF-8 bytes, as the module sends and receives them

my ($host, $port) = $url =~ m{^ws://([^/:]+):(\d+)/} or die "usage: perl client.pl ws://HOST:PORT/PATH VERSION\n";
my $socket = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => "tcp") or die "connect: $!";
binmode $socket;
$socket->autoflush(1);

sub frame { Protocol::WebSocket::Frame->new(version => $version, masked => 1, max_payload_size => 0, @_) }
sub send_text { print {$socket} frame(buffer => $_[0])->to_bytes; }

my $handshake = Protocol::WebSocket::Handshake::Client->new(url => $url, version => $version);
print {$socket} $handshake->to_string;

my $reader = frame();
my ($index, @mismatches, $closing) = (0);
while (1) {
    my $read = sysread($socket, my $buffer, 65536);
    last unless $read;
    unless ($handshake->is_done) {
        unless ($handshake->parse($buffer)) {
            report({event => "error", error => $handshake->error});
            exit 2;
        }
        next unless $handshake->is_done;
        send_text($messages[0]);
    }
    $reader->append($buffer);
    while (defined(my $body = $reader->next)) {
        if ($reader->is_close) {
            # The server's close: answer it (hixie-76's 0xFF 0x00, or an empty close frame),
            # unless this side closed first, and read on until the server ends the
            # connection. Without the answer the server waits out its close timeout.
            print {$socket} frame(type => "close")->to_bytes unless $closing;
            $closing = 1;
            last;
        }
        $body = Encode::encode_utf8($body) if utf8::is_utf8($body);    # text arrives decoded
        push @mismatches, $index unless $body eq $messages[$index];
        $index++;
        if ($index < @messages) { send_text($messages[$index]); }
        elsif ($mode eq "server-close") { send_text("close-me"); }
        else { print {$socket} frame(type => "close")->to_bytes; $closing = 1; }
    }
    # hixie-75 has no close frame: the client ends the connection itself.
    last if $closing && $version eq "draft-hixie-75";
}
report({event => "done", echoed => $index, total => scalar @messages, mismatches => \@mismatches});
