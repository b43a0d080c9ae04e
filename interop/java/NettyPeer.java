// A WebSocket peer built on Netty (Debian libnetty-java 4.1.48), which speaks versions 00
// (hixie-76), 07, 08 and 13 in both roles. Results are JSON lines on standard output.
//
//   java NettyPeer server                  echo server on a free port: prints {"port": N};
//                                           the text "close:CODE:REASON" closes with CODE;
//                                           when standard input ends it stops listening, and
//                                           it exits once every connection has ended
//   java NettyPeer client URL V00|V07|V08|V13
//                                           sends text (and, but for V00, binary) messages
//                                           across the length boundaries, checks each echo,
//                                           closes with 4000 and prints what came back
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.websocketx.BinaryWebSocketFrame;
import io.netty.handler.codec.http.websocketx.CloseWebSocketFrame;
import io.netty.handler.codec.http.websocketx.TextWebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketClientHandshaker;
import io.netty.handler.codec.http.websocketx.WebSocketClientHandshakerFactory;
import io.netty.handler.codec.http.websocketx.WebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketServerProtocolHandler;
import io.netty.handler.codec.http.websocketx.WebSocketVersion;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

public final class NettyPeer {
    static final int LIMIT = 64 * 1024 * 1024;
    static final int[] SIZES = {0, 1, 125, 126, 127, 65535, 65536, 300000};
    // Netty 4.1.48's WebSocket00FrameDecoder loses bytes of a text frame that spans several
    // reads (Netty against itself shows it too; its read buffer shrinks after small reads),
    // so hixie-00 messages stay short enough for one read.
    static final int[] SIZES_00 = {0, 1, 125, 126, 127};

    static synchronized void out(String json) {
        System.out.println(json);
        System.out.flush();
    }

    static String quote(String text) {
        return "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    public static void main(String[] args) throws Exception {
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(args[0].equals("server") ? 120_000 : 20_000);
            } catch (InterruptedException e) {
                return;
            }
            out("{\"event\": \"timeout\"}");
            System.exit(3);
        });
        watchdog.setDaemon(true);
        watchdog.start();
        if (args[0].equals("server")) {
            server();
        } else {
            System.exit(client(new URI(args[1]), WebSocketVersion.valueOf(args[2])));
        }
    }

    // -- server ---------------------------------------------------------------------------

    static void server() throws Exception {
        NioEventLoopGroup group = new NioEventLoopGroup(1);
        // The open connections (a channel leaves the group when it closes). The listener and
        // its connections share the group's one thread, which registers an accepted channel
        // (and so runs initChannel) before it reads the next event: once the listener is
        // closed, every connection it accepted is in here.
        ChannelGroup connections = new DefaultChannelGroup(group.next());
        ServerBootstrap bootstrap = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
            .childHandler(new ChannelInitializer<SocketChannel>() {
                @Override
                protected void initChannel(SocketChannel channel) {
                    connections.add(channel);
                    channel.pipeline().addLast(
                        new HttpServerCodec(),
                        new HttpObjectAggregator(65536),
                        new WebSocketServerProtocolHandler("/chat", null, true, LIMIT),
                        new Echo());
                }
            });
        Channel listener = bootstrap.bind("127.0.0.1", 0).sync().channel();
        int port = ((java.net.InetSocketAddress) listener.localAddress()).getPort();
        out("{\"port\": " + port + "}");
        while (System.in.read() >= 0) {
            // run until standard input ends
        }
        // The input may end before this side has seen the end of a connection that the test
        // has already closed, so rather than shut down with them open (after shutdownGracefully's
        // two quiet seconds, a fixed wait), stop listening and wait for them to end.
        listener.close().sync();
        connections.newCloseFuture().sync();
        group.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync();
    }

    static final class Echo extends SimpleChannelInboundHandler<WebSocketFrame> {
        @Override
        protected void channelRead0(ChannelHandlerContext ctx, WebSocketFrame frame) {
            if (frame instanceof TextWebSocketFrame) {
                String text = ((TextWebSocketFrame) frame).text();
                if (text.startsWith("close:")) {
                    String[] parts = text.split(":", 3);
                    ctx.writeAndFlush(new CloseWebSocketFrame(Integer.parseInt(parts[1]), parts[2]));
                } else {
                    ctx.writeAndFlush(new TextWebSocketFrame(text));
                }
            } else if (frame instanceof BinaryWebSocketFrame) {
                ctx.writeAndFlush(new BinaryWebSocketFrame(frame.content().retain()));
            }
        }
    }

    // -- client ---------------------------------------------------------------------------

    static String textOf(int size) {
        StringBuilder text = new StringBuilder(size);
        for (int i = 0; i < size; i++) {
            text.append((char) ('a' + i % 26));
        }
        return text.toString();
    }

    static byte[] bytesOf(int size) {
        byte[] data = new byte[size];
        for (int i = 0; i < size; i++) {
            data[i] = (byte) ((i * 7 + 3) % 251);
        }
        return data;
    }

    static int client(URI uri, WebSocketVersion version) throws Exception {
        List<Object> messages = new ArrayList<>();
        for (int size : version == WebSocketVersion.V00 ? SIZES_00 : SIZES) {
            messages.add(textOf(size));
            if (version != WebSocketVersion.V00) {
                messages.add(bytesOf(size));
            }
        }
        messages.add("h\u00e9llo w\u00f6rld");
        WebSocketClientHandshaker handshaker = WebSocketClientHandshakerFactory.newHandshaker(
            uri, version, null, true, new DefaultHttpHeaders(), LIMIT);
        Client handler = new Client(handshaker, messages, version);
        NioEventLoopGroup group = new NioEventLoopGroup(1);
        try {
            Channel channel = new Bootstrap().group(group).channel(NioSocketChannel.class)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel channel) {
                        channel.pipeline().addLast(new HttpClientCodec(), new HttpObjectAggregator(65536), handler);
                    }
                })
                .connect(uri.getHost(), uri.getPort()).sync().channel();
            channel.closeFuture().sync();
        } finally {
            group.shutdownGracefully(0, 5, TimeUnit.SECONDS).sync(); // its one channel is closed
        }
        out(handler.report());
        return handler.error == null ? 0 : 2;
    }

    static final class Client extends SimpleChannelInboundHandler<Object> {
        final WebSocketClientHandshaker handshaker;
        final List<Object> messages;
        final WebSocketVersion version;
        final List<Integer> mismatches = new ArrayList<>();
        int index = 0;
        Integer closeCode = null;
        String closeReason = null;
        String error = null;

        Client(WebSocketClientHandshaker handshaker, List<Object> messages, WebSocketVersion version) {
            this.handshaker = handshaker;
            this.messages = messages;
            this.version = version;
        }

        String report() {
            StringBuilder json = new StringBuilder("{\"event\": ").append(quote(error == null ? "done" : "error"));
            json.append(", \"version\": ").append(quote(version.name()));
            json.append(", \"echoed\": ").append(index).append(", \"total\": ").append(messages.size());
            json.append(", \"mismatches\": ").append(mismatches);
            json.append(", \"code\": ").append(closeCode);
            json.append(", \"reason\": ").append(closeReason == null ? "null" : quote(closeReason));
            if (error != null) {
                json.append(", \"error\": ").append(quote(error));
            }
            return json.append("}").toString();
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            handshaker.handshake(ctx.channel());
        }

        void sendNext(ChannelHandlerContext ctx) {
            if (index < messages.size()) {
                Object message = messages.get(index);
                ctx.writeAndFlush(message instanceof String
                    ? new TextWebSocketFrame((String) message)
                    : new BinaryWebSocketFrame(Unpooled.wrappedBuffer((byte[]) message)));
            } else if (version == WebSocketVersion.V00) {
                ctx.writeAndFlush(new CloseWebSocketFrame());
            } else {
                ctx.writeAndFlush(new CloseWebSocketFrame(4000, "client-bye"));
            }
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, Object message) {
            if (!handshaker.isHandshakeComplete()) {
                handshaker.finishHandshake(ctx.channel(), (FullHttpResponse) message);
                sendNext(ctx);
                return;
            }
            if (message instanceof CloseWebSocketFrame) {
                CloseWebSocketFrame close = (CloseWebSocketFrame) message;
                if (version != WebSocketVersion.V00) {
                    closeCode = close.statusCode();
                    closeReason = close.reasonText();
                }
                ctx.close();
                return;
            }
            Object expected = messages.get(index);
            boolean same;
            if (message instanceof TextWebSocketFrame) {
                same = expected instanceof String && expected.equals(((TextWebSocketFrame) message).text());
            } else {
                ByteBuf content = ((WebSocketFrame) message).content();
                byte[] received = new byte[content.readableBytes()];
                content.readBytes(received);
                same = expected instanceof byte[] && java.util.Arrays.equals((byte[]) expected, received);
            }
            if (!same) {
                mismatches.add(index);
            }
            index++;
            sendNext(ctx);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            error = String.valueOf(cause);
            ctx.close();
        }
    }
}
