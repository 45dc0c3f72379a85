#!/usr/bin/env bash
# Builds the embedded test engines: OpenSearch 2.19 (.), Elasticsearch 7.17 (es7/), Elasticsearch 8.19
# (es8/), Elasticsearch 9.x (es9/), OpenSearch 3.x (os3/). For each, resolves pom.xml's dependency closure
# with Maven into <dir>/target/cp.txt and compiles the launcher (every .java under <dir>/src, plus es-common/src
# for both Elasticsearch 8 and 9) into <dir>/target/classes. Elasticsearch 9 and OpenSearch 3 need Java 21+: they are compiled and run with the
# JDK in $AUDITRECV_JAVA21_HOME (default /usr/lib/jvm/temurin-25-jdk-amd64, present on CI machines); the
# others with the default Java 17. Idempotent: a stamp of the inputs skips an engine (well under a second
# for all five) when nothing changed. Called by scripts/install.sh --test and, if needed, by the pytest
# fixtures in tests/conftest.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
java21_home=${AUDITRECV_JAVA21_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "tests/engine/build.sh: '$1' not found: apt-get install -y $2" >&2
    exit 3
  fi
}
need java openjdk-17-jdk-headless
need javac openjdk-17-jdk-headless
need mvn maven
if [ ! -x "$java21_home/bin/javac" ] || [ ! -x "$java21_home/bin/java" ]; then
  echo "tests/engine/build.sh: no Java 21+ JDK at $java21_home (Elasticsearch 9 and OpenSearch 3 need one):" \
       "install the temurin-25 JDK there, or point AUDITRECV_JAVA21_HOME at a JDK 21 or later" >&2
  exit 3
fi

jars_present() {  # every jar of a resolved classpath is still in the local Maven repository
  local jar
  while IFS= read -r -d: jar || [ -n "$jar" ]; do
    [ -f "$jar" ] || return 1
  done < "$1"
}

build_one() {  # build_one DIR MAIN_CLASS JAVA_RELEASE [SHARED_SOURCE_DIR]
  local dir=$1 main=$2 release=$3 shared=${4:-} target=$1/target
  local javac=javac sources stamp
  [ "$release" = 17 ] || javac=$java21_home/bin/javac
  sources=$( (cd "$dir" && find src -name '*.java'; [ -z "$shared" ] || find "$shared" -name '*.java') | LC_ALL=C sort)
  stamp=$( (cd "$dir" && cat pom.xml $sources; cat "$here/log4j2.properties"; echo "$release $javac $sources") \
           | sha256sum | cut -c1-16)
  if [ -s "$target/cp.txt" ] && [ -f "$target/classes/${main//.//}.class" ] \
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
  # shellcheck disable=SC2086  # $sources: one path per word (no spaces in these paths)
  (cd "$dir" && "$javac" -nowarn --release "$release" -cp "$(cat "$target/cp.txt")" -d "$target/classes" $sources)
  cp "$here/log4j2.properties" "$target/classes/"
  echo "$stamp" > "$target/.stamp"
}

build_one "$here" EmbeddedOpenSearch 17
build_one "$here/es7" EmbeddedElasticsearch7 17
build_one "$here/es8" org.elasticsearch.node.EmbeddedElasticsearch 17 "$here/es-common/src"
build_one "$here/es9" org.elasticsearch.node.EmbeddedElasticsearch 21 "$here/es-common/src"
build_one "$here/os3" EmbeddedOpenSearch3 21
