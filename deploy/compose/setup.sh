#!/bin/bash
# compose.yaml's one-shot set-up: the kibana_system password, and the auditrecv user with a role that may
# only create its index templates and write its own indices and data streams.
set -euo pipefail
es=http://elasticsearch:9200
call() { curl -fsS -u "elastic:${ELASTIC_PASSWORD}" -H 'Content-Type: application/json' "$@"; echo; }

call -X POST "$es/_security/user/kibana_system/_password" -d "{\"password\":\"${KIBANA_PASSWORD}\"}"
call -X PUT "$es/_security/role/auditrecv_writer" -d '{
  "cluster": ["monitor", "manage_index_templates", "manage_ilm"],
  "indices": [{
    "names": ["auditrecv-*", "logs-auditrecv-*"],
    "privileges": ["create_doc", "create_index", "auto_configure", "view_index_metadata", "manage"]
  }]
}'
call -X PUT "$es/_security/user/auditrecv" -d "{\"password\":\"${AUDITRECV_PASSWORD}\",\"roles\":[\"auditrecv_writer\"]}"
