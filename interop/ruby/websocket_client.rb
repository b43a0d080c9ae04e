# A WebSocket client built on Ruby's websocket gem (Debian ruby-websocket 1.2.9, imanel's
# handshake and frame classes, which do no I/O), driven over a plain TCP socket.
# Its versions: 75, 76 (hixie), 3 (Sec-WebSocket-Draft: 3, MORE-bit frames), 5 and 6, 8
# and 13. For 5 and 6 the gem masks as versions 7+ do (a MASK bit, the key after the
# length: Handler05 is Handler04 with masking on), not with the key before the frame that
# the -05/-06 drafts, em-websocket and Jetty use; a server of those drafts refuses it. Sends text messages of several lengths (and binary
# ones where the version has them), checks each echo, closes, and prints one JSON line.
#
#   ruby websocket_client.rb URL VERSION
#
# Bytes that arrive after the handshake are taken from the socket, not from the gem's
# Handshake#leftovers, which strips whitespace and NUL from both ends (and would eat the
# 0x00 that starts a hixie frame).
require "json"
require "socket"
require "websocket"

$stdout.sync = true
url, version = ARGV[0], Integer(ARGV[1])
host, port = url[%r{\Aws://([^/]+)/}, 1].split(":")
TEXT_ONLY = [75, 76].include?(version)

def report(object)
  puts JSON.generate(object)
end

Thread.new do
  sleep 20
  report(event: "timeout")
  exit! 3
end

messages = [0, 1, 125, 126, 127, 65_535, 65_536, 300_000].flat_map do |size|
  text = Array.new(size) { |i| (97 + i % 26).chr }.join
  TEXT_ONLY ? [[:text, text]] : [[:text, text], [:binary, Array.new(size) { |i| ((i * 7 + 3) % 256).chr }.join.b]]
end
messages << [:text, "h\u00e9llo w\u00f6rld"]

socket = TCPSocket.new(host, Integer(port))
handshake = WebSocket::Handshake::Client.new(url: url, version: version)
socket.write(handshake.to_s)
raw = "".b
until handshake.finished?
  data = socket.readpartial(65_536)
  raw << data
  handshake << data
end
unless handshake.valid?
  report(event: "error", error: handshake.error.to_s)
  exit 2
end
after_head = raw.split("\r\n\r\n", 2)[1].to_s
# Drafts 0-3 and hixie-76 answer a challenge with 16 bytes after the head.
after_head = after_head.byteslice(16..) || "".b if version <= 3 || version == 76

incoming = WebSocket::Frame::Incoming::Client.new(version: handshake.version)
incoming << after_head unless after_head.empty?
send_frame = lambda do |type, data|
  socket.write(WebSocket::Frame::Outgoing::Client.new(version: handshake.version, data: data, type: type).to_s)
end

index = 0
mismatches = []
close_body = nil
send_frame.call(*messages[0])
loop do
  while (frame = incoming.next)
    if frame.type == :close
      close_body = frame.data.bytes
      break
    end
    type, expected = messages[index]
    received = frame.data.dup.force_encoding(expected.encoding)
    mismatches << index unless frame.type == type && received == expected
    index += 1
    if index < messages.size
      send_frame.call(*messages[index])
    elsif version == 75
      socket.close # hixie-75 has no close frame
    else
      send_frame.call(:close, "")
    end
  end
  break if socket.closed?
  data = begin
    socket.readpartial(65_536)
  rescue EOFError, IOError
    break
  end
  incoming << data
end
report(event: "done", version: version, echoed: index, total: messages.size, mismatches: mismatches, close_body: close_body)
