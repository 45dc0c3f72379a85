package org.elasticsearch.node;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.function.Supplier;

import org.apache.lucene.util.SetOnce;
import org.elasticsearch.Build;
import org.elasticsearch.ResourceNotFoundException;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.ClusterStateUpdateTask;
import org.elasticsearch.cluster.metadata.DataStream;
import org.elasticsearch.cluster.metadata.ProjectMetadata;
import org.elasticsearch.cluster.metadata.MetadataDeleteIndexService;
import org.elasticsearch.cluster.metadata.MetadataIndexTemplateService;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.Priority;
import org.elasticsearch.common.regex.Regex;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.Index;
import org.elasticsearch.index.IndexNotFoundException;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.RestChannel;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

/**
 * What the Elasticsearch 9.x distribution serves from modules that are not published on Maven Central,
 * reduced to what the auditrecv tests use: {@code GET /} (module rest-root) and the {@code _data_stream}
 * GET and DELETE API (module data-streams). Data streams themselves (auto-creation on the first write
 * through a template with {@code "data_stream": {}}) are in the server jar already.
 *
 * The answers keep the real response shapes for the fields they carry; the data-stream delete does what
 * the module's transport action does (on the single, default project): drop the stream from the metadata,
 * then its backing indices.
 */
// The unbatched cluster-state task and (9.x) the default-project accessors are deprecated for multi-project
// clusters; this node is single-project, as the module's own transport actions assume too.
@SuppressWarnings({"deprecation", "removal"})
public final class AuditrecvTestPlugin extends Plugin implements ActionPlugin {
    private final SetOnce<ClusterService> clusterService = new SetOnce<>();
    private final Settings settings;

    public AuditrecvTestPlugin(Settings settings) {
        this.settings = settings;
    }

    @Override
    public Collection<?> createComponents(PluginServices services) {
        clusterService.set(services.clusterService());
        return List.of();
    }

    @Override
    public Collection<RestHandler> getRestHandlers(RestHandlersServices services, Supplier<DiscoveryNodes> nodes,
            Predicate<NodeFeature> clusterSupportsFeature) {
        return List.of(new RootHandler(), new DataStreamHandler());
    }

    /** {@code GET /}: what RestMainAction answers (the sink detects the flavor and version from it). */
    final class RootHandler implements RestHandler {
        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
        }

        @Override
        public void handleRequest(RestRequest request, RestChannel channel, NodeClient client) throws IOException {
            ClusterService cluster = clusterService.get();
            Build build = Build.current();
            XContentBuilder body = channel.newBuilder();
            body.startObject();
            body.field("name", cluster.getNodeName());
            body.field("cluster_name", cluster.getClusterName().value());
            body.field("cluster_uuid", cluster.state().metadata().clusterUUID());
            body.startObject("version");
            body.field("number", build.qualifiedVersion());
            body.field("build_flavor", "default");
            body.field("build_type", build.type().displayName());
            body.field("build_hash", build.hash());
            body.field("build_date", build.date());
            body.field("build_snapshot", build.isSnapshot());
            body.field("lucene_version", org.apache.lucene.util.Version.LATEST.toString());
            body.field("minimum_wire_compatibility_version", build.minWireCompatVersion());
            body.field("minimum_index_compatibility_version", build.minIndexCompatVersion());
            body.endObject();
            body.field("tagline", "You Know, for Search");
            body.endObject();
            channel.sendResponse(new RestResponse(RestStatus.OK, body));
        }
    }

    /** {@code GET /_data_stream[/{name}]} and {@code DELETE /_data_stream/{name}} (comma lists and wildcards). */
    final class DataStreamHandler implements RestHandler {
        @Override
        public List<Route> routes() {
            return List.of(
                new Route(RestRequest.Method.GET, "/_data_stream"),
                new Route(RestRequest.Method.GET, "/_data_stream/{name}"),
                new Route(RestRequest.Method.DELETE, "/_data_stream/{name}"));
        }

        @Override
        public void handleRequest(RestRequest request, RestChannel channel, NodeClient client) throws IOException {
            String expression = request.param("name", "*");
            ProjectMetadata metadata = clusterService.get().state().metadata().getDefaultProject();
            List<String> names;
            try {
                names = resolve(metadata.dataStreams(), expression);
            } catch (ResourceNotFoundException e) {
                channel.sendResponse(new RestResponse(channel, e));
                return;
            }
            if (request.method() == RestRequest.Method.GET) {
                XContentBuilder body = channel.newBuilder();
                body.startObject().startArray("data_streams");
                for (String name : names) {
                    DataStream stream = metadata.dataStreams().get(name);
                    body.startObject();
                    body.field("name", name);
                    body.startObject("timestamp_field").field("name", "@timestamp").endObject();
                    body.startArray("indices");
                    for (Index index : stream.getIndices()) {
                        body.startObject().field("index_name", index.getName()).field("index_uuid", index.getUUID()).endObject();
                    }
                    body.endArray();
                    body.field("generation", stream.getGeneration());
                    body.field("status", "GREEN");
                    body.field("template", MetadataIndexTemplateService.findV2Template(metadata, name, false));
                    body.field("hidden", stream.isHidden());
                    body.field("system", stream.isSystem());
                    body.endObject();
                }
                body.endArray().endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, body));
                return;
            }
            delete(names, channel);
        }

        private void delete(List<String> names, RestChannel channel) {
            clusterService.get().submitUnbatchedStateUpdateTask("delete-data-stream " + names,
                new ClusterStateUpdateTask(Priority.HIGH) {
                    @Override
                    public ClusterState execute(ClusterState current) {
                        Set<Index> backing = new HashSet<>();
                        ProjectMetadata project = current.metadata().getDefaultProject();
                        ProjectMetadata.Builder metadata = ProjectMetadata.builder(project);
                        for (String name : names) {
                            DataStream stream = project.dataStreams().get(name);
                            if (stream == null) {
                                continue;
                            }
                            backing.addAll(stream.getIndices());
                            backing.addAll(stream.getFailureIndices());
                            metadata.removeDataStream(name);
                        }
                        // the stream first, so deleting its indices does not fail the data-stream validation
                        ClusterState withoutStreams = ClusterState.builder(current).putProjectMetadata(metadata).build();
                        return MetadataDeleteIndexService.deleteIndices(
                            withoutStreams.projectState(project.id()), backing, settings);
                    }

                    @Override
                    public void onFailure(Exception e) {
                        try {
                            channel.sendResponse(new RestResponse(channel, e));
                        } catch (IOException io) {
                            e.addSuppressed(io);
                        }
                    }

                    @Override
                    public void clusterStateProcessed(ClusterState before, ClusterState after) {
                        try {
                            channel.sendResponse(new RestResponse(RestStatus.OK,
                                channel.newBuilder().startObject().field("acknowledged", true).endObject()));
                        } catch (IOException e) {
                            onFailure(e);
                        }
                    }
                });
        }
    }

    /** Names matching a comma list of names and wildcards; a plain name that matches nothing is a 404. */
    static List<String> resolve(Map<String, DataStream> streams, String expression) {
        List<String> names = new ArrayList<>();
        for (String part : expression.split(",")) {
            if (Regex.isSimpleMatchPattern(part)) {
                for (String name : streams.keySet()) {
                    if (Regex.simpleMatch(part, name) && names.contains(name) == false) {
                        names.add(name);
                    }
                }
            } else if (streams.containsKey(part)) {
                if (names.contains(part) == false) {
                    names.add(part);
                }
            } else {
                throw new IndexNotFoundException(part);
            }
        }
        names.sort(null);
        return names;
    }
}
