import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.opensearch.Version;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.index.mapper.MapperExtrasModulePlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.plugins.PluginInfo;
import org.opensearch.transport.Netty4ModulePlugin;

/**
 * A single-node OpenSearch 3.x for the auditrecv test suite, in its own JVM with a flat classpath.
 *
 * Why a Node subclass: the protected constructor is the only way to hand the Netty4 HTTP/transport
 * plugin to the node from the classpath, without a distribution's modules/ directory (and its
 * jar-hell checks). Bootstrap checks and the security manager are never installed: only the
 * distribution's Bootstrap does that.
 *
 * Usage: EmbeddedOpenSearch3 HOME HTTP_PORT TRANSPORT_PORT. Prints "HTTP_ADDRESS=host:port" once the
 * node has started (readiness is still confirmed by the caller over HTTP); SIGTERM closes it cleanly.
 * With -Dauditrecv.exitOnStdinEof=true (the pytest fixture sets it), end of standard input also closes
 * it, so a test run that dies without its finalizers (SIGKILL, crash) never leaves an orphan JVM behind:
 * its end of the pipe closes with it. Off by default, so a launch by hand with stdin on a terminal or
 * /dev/null behaves normally.
 */
public final class EmbeddedOpenSearch3 {
    private EmbeddedOpenSearch3() {}

    /** Exposes the protected constructor so classpath plugins can be passed in (as descriptors since 3.0). */
    static final class ClasspathNode extends Node {
        ClasspathNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins.stream().map(EmbeddedOpenSearch3::describe).toList(), true);
        }
    }

    /** What a plugin's descriptor file would say, for a plugin class already on the classpath. */
    static PluginInfo describe(Class<? extends Plugin> plugin) {
        return new PluginInfo(plugin.getName(), "classpath plugin", "NA", Version.CURRENT, "21", plugin.getName(),
            null, List.of(), false);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: EmbeddedOpenSearch3 HOME HTTP_PORT TRANSPORT_PORT");
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
        Node node = new ClasspathNode(env, List.of(Netty4ModulePlugin.class, MapperExtrasModulePlugin.class));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            }
        }, "embedded-opensearch-shutdown"));
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
