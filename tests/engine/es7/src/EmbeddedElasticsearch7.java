import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.Version;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.index.mapper.MapperExtrasPlugin;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.transport.Netty4Plugin;

/**
 * A single-node Elasticsearch 7.17 for the auditrecv test suite, in its own JVM with a flat classpath.
 *
 * Why a Node subclass: the protected constructor is the only way to hand the Netty4 HTTP/transport
 * plugin to the node from the classpath, without a distribution's modules/ directory (and its
 * jar-hell checks). Bootstrap checks and the security manager are never installed: only the
 * distribution's Bootstrap does that.
 *
 * Usage: EmbeddedElasticsearch7 HOME HTTP_PORT TRANSPORT_PORT. Prints "HTTP_ADDRESS=host:port" once the
 * node has started (readiness is still confirmed by the caller over HTTP); SIGTERM closes it cleanly.
 * With -Dauditrecv.exitOnStdinEof=true (the pytest fixture sets it), end of standard input also closes
 * it, so a test run that dies without its finalizers (SIGKILL, crash) never leaves an orphan JVM behind:
 * its end of the pipe closes with it. Off by default, so a launch by hand with stdin on a terminal or
 * /dev/null behaves normally.
 */
public final class EmbeddedElasticsearch7 {
    private EmbeddedElasticsearch7() {}

    /** Exposes the protected constructor so classpath plugins can be passed in. */
    static final class ClasspathNode extends Node {
        ClasspathNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: EmbeddedElasticsearch7 HOME HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        Settings settings = Settings.builder()
            .put("cluster.name", "auditrecv-test")
            .put("node.name", "n1")
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", args[1])
            .put("transport.port", args[2])
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .build();
        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "n1");
        Node node = new ClasspathNode(env, List.of(Netty4Plugin.class, MapperExtrasPlugin.class));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            }
        }, "embedded-elasticsearch-shutdown"));
        if (Boolean.getBoolean("auditrecv.exitOnStdinEof")) {
            Thread stdinWatch = new Thread(() -> {
                try {
                    while (System.in.read() >= 0) {
                        // ignore input; only end of file matters
                    }
                } catch (java.io.IOException e) {
                    // treat a broken stdin like end of file
                }
                System.exit(0);
            }, "stdin-eof-watch");
            stdinWatch.setDaemon(true);
            stdinWatch.start();
        }
        node.start();
        HttpServerTransport http = node.injector().getInstance(HttpServerTransport.class);
        System.out.println("VERSION=" + Version.CURRENT);
        System.out.println("HTTP_ADDRESS=" + http.boundAddress().publishAddress());
        System.out.flush();
        Thread.currentThread().join();
    }
}
