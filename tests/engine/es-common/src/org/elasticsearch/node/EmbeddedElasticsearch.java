package org.elasticsearch.node;

import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.Build;
import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;
import org.elasticsearch.transport.netty4.Netty4Plugin;

/**
 * A single-node Elasticsearch 8.19 or 9.x for the auditrecv test suite, in its own JVM with a flat classpath.
 *
 * One source for both: build.sh compiles it with es8/src or es9/src, which hold what differs between the two
 * (the plugins service's descriptors, the test plugin's REST registration and per-project metadata).
 *
 * Why in package org.elasticsearch.node: since 8.10 a node is built by NodeConstruction, and the only way to
 * hand it plugins from the classpath (no distribution, no modules/ directory, no jar-hell checks) is a
 * NodeServiceProvider that makes the plugins service; both are package-private. Bootstrap checks,
 * entitlements and the security manager are never installed: only the distribution's launcher does that.
 *
 * Usage and behaviour as tests/engine/src/EmbeddedOpenSearch.java: HOME HTTP_PORT TRANSPORT_PORT, prints
 * "VERSION=" and "HTTP_ADDRESS=" once started, SIGTERM (and stdin EOF with -Dauditrecv.exitOnStdinEof=true)
 * closes it.
 */
public final class EmbeddedElasticsearch {
    private EmbeddedElasticsearch() {}

    static final List<Class<? extends Plugin>> PLUGINS = List.of(Netty4Plugin.class, AuditrecvTestPlugin.class);

    /** Makes a plugins service from classes on the classpath instead of a modules/ directory. */
    static final class ClasspathServiceProvider extends NodeServiceProvider {
        @Override
        PluginsService newPluginService(Environment env, PluginsLoader loader) {
            return new ClasspathPluginsService(env.settings(), env, PLUGINS);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: EmbeddedElasticsearch HOME HTTP_PORT TRANSPORT_PORT");
            System.exit(2);
        }
        LogConfigurator.configureESLogging();
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
        Node node = new Node(NodeConstruction.prepareConstruction(
            env, ClasspathPluginsService.emptyLoader(), new ClasspathServiceProvider(), true));
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
        System.out.println("VERSION=" + Build.current().qualifiedVersion());
        System.out.println("HTTP_ADDRESS=" + http.boundAddress().publishAddress());
        System.out.flush();
        Thread.currentThread().join();
    }
}
