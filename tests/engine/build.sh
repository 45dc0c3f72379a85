#!/usr/bin/env bash
# Builds the embedded test engines (OpenSearch 2.19 in ., Elasticsearch 7.17 in es7/):
# resolves each pom.xml's dependency closure with Maven into <dir>/target/cp.txt and compiles the
# launcher into <dir>/target/classes. Idempotent: a stamp of the inputs skips everything (well under
# a second) when nothing changed. Called by scripts/install.sh --test and, if needed, by the pytest
# fixtures in tests/conftest.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "tests/engine/build.sh: '$1' not found: apt-get install -y $2" >&2
    exit 3
  fi
}
need java openjdk-17-jdk-headless
need javac openjdk-17-jdk-headless
need mvn maven

jars_present() {  # every jar of a resolved classpath is still in the local Maven repository
  local jar
  while IFS= read -r -d: jar || [ -n "$jar" ]; do
    [ -f "$jar" ] || return 1
  done < "$1"
}

build_one() {  # build_one DIR MAIN_CLASS
  local dir=$1 main=$2 target=$1/target
  local stamp
  stamp=$(cat "$dir/pom.xml" "$dir/src/$main.java" "$here/log4j2.properties" | sha256sum | cut -c1-16)
  if [ -s "$target/cp.txt" ] && [ -f "$target/classes/$main.class" ] \
     && [ "$(cat "$target/.stamp" 2>/dev/null)" = "$stamp" ] && jars_present "$target/cp.txt"; then
    return 0
  fi
  mkdir -p "$target"
  rm -rf "$target/classes" "$target/.stamp"
  echo "tests/engine/build.sh: resolving and compiling $main" >&2
  if ! mvn -B -Dstyle.color=never -f "$dir/pom.xml" dependency:build-classpath \
       -Dmdep.outputFile="$target/cp.txt" >"$target/mvn.log" 2>&1; then
    tail -40 "$target/mvn.log" >&2
    echo "tests/engine/build.sh: Maven failed for $dir/pom.xml (full log: $target/mvn.log)" >&2
    exit 1
  fi
  javac -nowarn --release 17 -cp "$(cat "$target/cp.txt")" -d "$target/classes" "$dir/src/$main.java"
  cp "$here/log4j2.properties" "$target/classes/"
  echo "$stamp" > "$target/.stamp"
}

build_one "$here" EmbeddedOpenSearch
build_one "$here/es7" EmbeddedElasticsearch7
