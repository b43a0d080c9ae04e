// A WebSocket peer built on Netty (Debian libnetty-java 4.1.48), which speaks versions 00
// (hixie-76), 07, 08 and 13 in both roles. Results are JSON lines on standard output.
//
//   java NettyPeer server [compress [no-context]] [fragment]
//                                           echo server on a free port: prints {"port": N};
//                                           the text "close:CODE:REASON" closes with CODE;
//                                           when standard input ends it stops listening, and
//                                           it exits once every connection has ended.
//                                           compress: WebSocketServerCompressionHandler
//                                           (permessage-deflate, deflate-frame and
//                                           x-webkit-deflate-frame), messages reassembled, and
//                                           {"event": "close", ...} printed for every connection
//                                           with the extension fields and codecs it had;
//                                           no-context: permessage-deflate that agrees to
//                                           server_no_context_takeover (Netty's default declines
//                                           the offer) and asks for client_no_context_takeover;
//                                           fragment: every echo of 3 characters or bytes or
//                                           more in three frames
//   java NettyPeer client URL V00|V07|V08|V13 [EXTENSIONS [fragment]]
//                                           sends text (and, but for V00, binary) messages
//                                           across the length boundaries, checks each echo,
//                                           closes with 4000 and prints what came back.
//                                           EXTENSIONS: permessage-deflate (Netty's
//                                           WebSocketClientCompressionHandler, which also offers
//                                           both deflate-frame names), permessage-deflate-no-context
//                                           (asks for server_no_context_takeover and accepts
//                                           client_no_context_takeover), deflate-frame or
//                                           x-webkit-deflate-frame (that one alone); it adds
//                                           incompressible messages to the plan.
//                                           fragment: every message of 3 characters or bytes
//                                           or more in three frames
//
// Netty 4.1.48 fails on empty fragments of a compressed message: its PerMessageDeflateEncoder
// with "cannot compress content buffer" when it sends one, its PerMessageDeflateDecoder with
// "cannot read uncompressed buffer" on a received frame whose payload inflates to nothing but
// is not the single byte 00 (such as 00 00 00 ff ff, an empty first fragment). So this peer
// cuts only messages whose three pieces are all non-empty.
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
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.compression.ZlibCodecFactory;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.websocketx.BinaryWebSocketFrame;
import io.netty.handler.codec.http.websocketx.CloseWebSocketFrame;
import io.netty.handler.codec.http.websocketx.ContinuationWebSocketFrame;
import io.netty.handler.codec.http.websocketx.TextWebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketClientHandshaker;
import io.netty.handler.codec.http.websocketx.WebSocketClientHandshakerFactory;
import io.netty.handler.codec.http.websocketx.WebSocketFrame;
import io.netty.handler.codec.http.websocketx.WebSocketFrameAggregator;
import io.netty.handler.codec.http.websocketx.WebSocketServerProtocolHandler;
import io.netty.handler.codec.http.websocketx.WebSocketVersion;
import io.netty.handler.codec.http.websocketx.extensions.WebSocketClientExtensionHandler;
import io.netty.handler.codec.http.websocketx.extensions.WebSocketExtensionDecoder;
import io.netty.handler.codec.http.websocketx.extensions.WebSocketExtensionEncoder;
import io.netty.handler.codec.http.websocketx.extensions.WebSocketServerExtensionHandler;
import io.netty.handler.codec.http.websocketx.extensions.compression.DeflateFrameServerExtensionHandshaker;
import io.netty.handler.codec.http.websocketx.extensions.compression.DeflateFrameClientExtensionHandshaker;
import io.netty.handler.codec.http.websocketx.extensions.compression.PerMessageDeflateClientExtensionHandshaker;
import io.netty.handler.codec.http.websocketx.extensions.compression.PerMessageDeflateServerExtensionHandshaker;
import io.netty.handler.codec.http.websocketx.extensions.compression.WebSocketClientCompressionHandler;
import io.netty.handler.codec.http.websocketx.extensions.compression.WebSocketServerCompressionHandler;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

public final class NettyPeer {
    static final int LIMIT = 64 * 1024 * 1024;
    static final int[] SIZES = {0, 1, 125, 126, 127, 65535, 65536, 300000};
    // Netty 4.1.48's WebSocket00FrameDecoder loses bytes of a text frame that spans several
    // reads (Netty against itself shows it too; its read buffer shrinks after small reads),
    // so hixie-00 messages stay short enough for one read.
    static final int[] SIZES_00 = {0, 1, 125, 126, 127};
    // Incompressible messages (as noise_of in tests/interop/compressed.py): their compressed
    // frames fall on both sides of the 125/126 and 65535/65536 length boundaries.
    static final int[] NOISE_SIZES = {1, 120, 125, 126, 65500, 65535, 65536, 300000};

    static synchronized void out(String json) {
        System.out.println(json);
        System.out.flush();
    }

    static String quote(String text) {
        return text == null ? "null" : "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }

    // The extension codecs a pipeline has, by class name (as a JSON list).
    static String codecs(ChannelHandlerContext ctx) {
        List<String> names = new ArrayList<>();
        for (Map.Entry<String, ChannelHandler> entry : ctx.pipeline()) {
            ChannelHandler handler = entry.getValue();
            if (handler instanceof WebSocketExtensionDecoder || handler instanceof WebSocketExtensionEncoder) {
                names.add(quote(handler.getClass().getSimpleName()));
            }
        }
        return names.toString();
    }

    // Records the Sec-WebSocket-Extensions fields of the opening handshake that pass it: put it
    // between the HTTP codec and an extension handler, which adds the field it writes.
    static final class Fields extends ChannelDuplexHandler {
        String offer = null;
        String answer = null;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object message) throws Exception {
            if (message instanceof HttpRequest) {
                offer = ((HttpRequest) message).headers().get("Sec-WebSocket-Extensions");
            } else if (message instanceof HttpResponse) {
                answer = ((HttpResponse) message).headers().get("Sec-WebSocket-Extensions");
            }
            super.channelRead(ctx, message);
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object message, ChannelPromise promise) throws Exception {
            if (message instanceof HttpRequest) {
                offer = ((HttpRequest) message).headers().get("Sec-WebSocket-Extensions");
            } else if (message instanceof HttpResponse) {
                answer = ((HttpResponse) message).headers().get("Sec-WebSocket-Extensions");
            }
            super.write(ctx, message, promise);
        }
    }

    // A write that fails (in an extension's encoder, say) goes to exceptionCaught, which reports it.
    static final ChannelFutureListener REPORT_FAILURE = ChannelFutureListener.FIRE_EXCEPTION_ON_FAILURE;

    // Sends a message (a String or a ByteBuf) in one frame or, with `fragment` and 3 characters
    // or bytes or more, in three non-empty ones: the first with its opcode, then continuations.
    static void write(ChannelHandlerContext ctx, Object message, boolean fragment) {
        int size = message instanceof String ? ((String) message).length() : ((ByteBuf) message).readableBytes();
        if (!fragment || size < 3) {
            WebSocketFrame frame = message instanceof String
                ? new TextWebSocketFrame((String) message) : new BinaryWebSocketFrame((ByteBuf) message);
            ctx.writeAndFlush(frame).addListener(REPORT_FAILURE);
        } else if (message instanceof String) {
            String text = (String) message;
            int step = size / 3;
            String[] parts = {text.substring(0, step), text.substring(step, 2 * step), text.substring(2 * step)};
            ctx.write(new TextWebSocketFrame(false, 0, parts[0])).addListener(REPORT_FAILURE);
            ctx.write(new ContinuationWebSocketFrame(false, 0, parts[1])).addListener(REPORT_FAILURE);
            ctx.writeAndFlush(new ContinuationWebSocketFrame(true, 0, parts[2])).addListener(REPORT_FAILURE);
        } else {
            ByteBuf data = (ByteBuf) message;
            int step = size / 3;
            ByteBuf[] parts = {data.retainedSlice(data.readerIndex(), step),
                data.retainedSlice(data.readerIndex() + step, step),
                data.retainedSlice(data.readerIndex() + 2 * step, size - 2 * step)};
            data.release();
            ctx.write(new BinaryWebSocketFrame(false, 0, parts[0])).addListener(REPORT_FAILURE);
            ctx.write(new ContinuationWebSocketFrame(false, 0, parts[1])).addListener(REPORT_FAILURE);
            ctx.writeAndFlush(new ContinuationWebSocketFrame(true, 0, parts[2])).addListener(REPORT_FAILURE);
        }
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
        List<String> flags = Arrays.asList(args);
        if (args[0].equals("server")) {
            server(flags.contains("compress"), flags.contains("no-context"), flags.contains("fragment"));
        } else {
            String extensions = args.length > 3 ? args[3] : "none";
            System.exit(client(new URI(args[1]), WebSocketVersion.valueOf(args[2]), extensions, flags.contains("fragment")));
        }
    }

    // -- server ---------------------------------------------------------------------------

    static void server(boolean compress, boolean noContext, boolean fragment) throws Exception {
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
                    if (!compress) {
                        channel.pipeline().addLast(
                            new HttpServerCodec(),
                            new HttpObjectAggregator(65536),
                            new WebSocketServerProtocolHandler("/chat", null, true, LIMIT),
                            new Echo(null, false));
                        return;
                    }
                    Fields fields = new Fields();
                    channel.pipeline().addLast(
                        new HttpServerCodec(),
                        new HttpObjectAggregator(65536),
                        fields,
                        noContext
                            ? new WebSocketServerExtensionHandler(
                                // Level 6, window parameters as Netty's default, a 2**15 window;
                                // agree to server_no_context_takeover, ask for client_no_context_takeover.
                                new PerMessageDeflateServerExtensionHandshaker(
                                    6, ZlibCodecFactory.isSupportingWindowSizeAndMemLevel(), 15, true, true),
                                new DeflateFrameServerExtensionHandshaker())
                            : new WebSocketServerCompressionHandler(),
                        new WebSocketServerProtocolHandler("/chat", null, true, LIMIT),
                        new WebSocketFrameAggregator(LIMIT),
                        new Echo(fields, fragment));
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
        final Fields fields; // null: report nothing
        final boolean fragment;
        String codecs = "[]";
        int messages = 0;

        Echo(Fields fields, boolean fragment) {
            this.fields = fields;
            this.fragment = fragment;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, WebSocketFrame frame) {
            if (messages == 0) {
                codecs = codecs(ctx);
            }
            if (frame instanceof TextWebSocketFrame) {
                String text = ((TextWebSocketFrame) frame).text();
                if (text.startsWith("close:")) {
                    String[] parts = text.split(":", 3);
                    ctx.writeAndFlush(new CloseWebSocketFrame(Integer.parseInt(parts[1]), parts[2]));
                    return;
                }
                messages++;
                write(ctx, text, fragment);
            } else if (frame instanceof BinaryWebSocketFrame) {
                messages++;
                write(ctx, frame.content().retain(), fragment);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (fields != null) {
                out("{\"event\": \"error\", \"error\": " + quote(String.valueOf(cause)) + "}");
            }
            ctx.close();
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) throws Exception {
            if (fields != null) {
                out("{\"event\": \"close\", \"offer\": " + quote(fields.offer) + ", \"answer\": " + quote(fields.answer)
                    + ", \"codecs\": " + codecs + ", \"messages\": " + messages + "}");
            }
            super.channelInactive(ctx);
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

    static byte[] noiseOf(int size) {
        byte[] data = new byte[size];
        int state = size == 0 ? 1 : size;
        for (int i = 0; i < size; i++) {
            state = state * 1103515245 + 12345;
            data[i] = (byte) (state >>> 24);
        }
        return data;
    }

    static ChannelHandler extensionHandler(String extensions) {
        switch (extensions) {
            case "none":
                return null;
            case "permessage-deflate":
                return WebSocketClientCompressionHandler.INSTANCE;
            case "permessage-deflate-no-context":
                // Level 6, the window parameter as Netty's default, a 2**15 window; accept
                // client_no_context_takeover (Netty's default fails on it) and ask for
                // server_no_context_takeover.
                return new WebSocketClientExtensionHandler(new PerMessageDeflateClientExtensionHandshaker(
                    6, ZlibCodecFactory.isSupportingWindowSizeAndMemLevel(), 15, true, true));
            case "deflate-frame":
                return new WebSocketClientExtensionHandler(new DeflateFrameClientExtensionHandshaker(false));
            case "x-webkit-deflate-frame":
                return new WebSocketClientExtensionHandler(new DeflateFrameClientExtensionHandshaker(true));
            default:
                throw new IllegalArgumentException("unknown extensions " + extensions);
        }
    }

    static int client(URI uri, WebSocketVersion version, String extensions, boolean fragment) throws Exception {
        ChannelHandler extensionHandler = extensionHandler(extensions);
        List<Object> messages = new ArrayList<>();
        for (int size : version == WebSocketVersion.V00 ? SIZES_00 : SIZES) {
            messages.add(textOf(size));
            if (version != WebSocketVersion.V00) {
                messages.add(bytesOf(size));
            }
        }
        if (extensionHandler != null) {
            for (int size : NOISE_SIZES) {
                messages.add(noiseOf(size));
            }
        }
        messages.add("h\u00e9llo w\u00f6rld");
        WebSocketClientHandshaker handshaker = WebSocketClientHandshakerFactory.newHandshaker(
            uri, version, null, true, new DefaultHttpHeaders(), LIMIT);
        Fields fields = new Fields();
        Client handler = new Client(handshaker, messages, version, fields, fragment);
        NioEventLoopGroup group = new NioEventLoopGroup(1);
        try {
            Channel channel = new Bootstrap().group(group).channel(NioSocketChannel.class)
                .handler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel channel) {
                        channel.pipeline().addLast(new HttpClientCodec(), new HttpObjectAggregator(65536), fields);
                        if (extensionHandler != null) {
                            channel.pipeline().addLast(extensionHandler, new WebSocketFrameAggregator(LIMIT));
                        }
                        channel.pipeline().addLast(handler);
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
        final Fields fields;
        final boolean fragment;
        final List<Integer> mismatches = new ArrayList<>();
        int index = 0;
        Integer closeCode = null;
        String closeReason = null;
        String error = null;
        String codecs = "[]";

        Client(WebSocketClientHandshaker handshaker, List<Object> messages, WebSocketVersion version, Fields fields,
               boolean fragment) {
            this.handshaker = handshaker;
            this.messages = messages;
            this.version = version;
            this.fields = fields;
            this.fragment = fragment;
        }

        String report() {
            StringBuilder json = new StringBuilder("{\"event\": ").append(quote(error == null ? "done" : "error"));
            json.append(", \"version\": ").append(quote(version.name()));
            json.append(", \"echoed\": ").append(index).append(", \"total\": ").append(messages.size());
            json.append(", \"mismatches\": ").append(mismatches);
            json.append(", \"code\": ").append(closeCode);
            json.append(", \"reason\": ").append(quote(closeReason));
            json.append(", \"offer\": ").append(quote(fields.offer));
            json.append(", \"answer\": ").append(quote(fields.answer));
            json.append(", \"codecs\": ").append(codecs);
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
                write(ctx, message instanceof String ? message : Unpooled.wrappedBuffer((byte[]) message), fragment);
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
                // The extension handler has seen the response before this handler, and put its codecs in.
                codecs = codecs(ctx);
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
