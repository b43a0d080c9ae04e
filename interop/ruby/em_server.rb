# An echo server built on Ruby's em-websocket (Debian ruby-em-websocket), the packaged
# server for hixie-75, hixie-76, Sec-WebSocket-Draft 1-3 and versions 5, 6, 7, 8 and 13.
# Listens on a free port and prints {"port": N}, then one JSON line per closed connection;
# the text "close:CODE:REASON" makes it close that connection. When its input ends it stops
# listening, and it exits once every connection has ended and been reported.
#
#   ruby em_server.rb
require "em-websocket"
require "json"
require "socket"

$stdout.sync = true # each line is written to the pipe at once, none waits in a buffer

open_connections = 0
input_ended = false
# The input may end before the reactor has seen the end of a connection that the test has
# already closed (they come on different descriptors, in no set order): stopping then would
# tear that connection down, unreported or reported wrongly.
stop_when_done = -> { EM.stop if input_ended && open_connections.zero? }

# Counts each connection from its accept to its unbind, which comes after its onclose (and
# also ends connections whose handshake never finished, which have no onclose).
counted_connection = Class.new(EM::WebSocket::Connection) do
  define_method(:unbind) do
    super()
  ensure
    open_connections -= 1
    stop_when_done.call
  end
end

EM.run do
  server = EM.start_server("127.0.0.1", 0, counted_connection, max_frame_size: 64 << 20) do |socket|
    open_connections += 1
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
  port, = Socket.unpack_sockaddr_in(EM.get_sockname(server))
  puts JSON.generate(port: port)
  Thread.new do
    $stdin.read
    # EM.schedule hands the block to the reactor's thread: EM.stop and EM.stop_server
    # are not for other threads to call.
    EM.schedule do
      input_ended = true
      EM.stop_server(server)
      stop_when_done.call
    end
  end
end
