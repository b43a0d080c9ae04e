# An echo server built on Ruby's em-websocket (Debian ruby-em-websocket), the packaged
# server for hixie-75, hixie-76, Sec-WebSocket-Draft 1-3 and versions 5, 6, 7, 8 and 13.
# Prints {"port": N} when listening and one JSON line per closed connection; the text
# "close:CODE:REASON" makes it close that connection. Ends when its input ends.
#
#   ruby em_server.rb PORT
require "em-websocket"
require "json"

$stdout.sync = true
port = Integer(ARGV.fetch(0))

EM.run do
  EM::WebSocket.run(host: "127.0.0.1", port: port, max_frame_size: 64 << 20) do |socket|
    version = nil
    socket.onopen { |handshake| version = handshake.protocol_version }
    socket.onmessage do |message|
      if message.start_with?("close:")
        _, code, reason = message.split(":")
        socket.close(Integer(code), reason)
      else
        socket.send(message)
      end
    end
    socket.onbinary { |message| socket.send_binary(message) }
    socket.onclose do |event|
      event = {} unless event.is_a?(Hash)
      puts JSON.generate(event: "close", code: event[:code], reason: event[:reason], version: version)
    end
    socket.onerror { |error| puts JSON.generate(event: "error", error: error.to_s) }
  end
  puts JSON.generate(port: port)
  Thread.new do
    $stdin.read
    EM.stop
  end
end
