#!/usr/bin/env bash
# Regenerates tests/data/c14n/expected/*.out from subsets.txt with libxml2's C14N (tools/c14n_ref.c).
# Needs gcc and libxml2's headers (apt-get install gcc libxml2-dev). Review the diff before committing:
# these files are the reference the Rust canonicaliser is held to.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$(mktemp -d)/c14n_ref
trap 'rm -rf "$(dirname "$bin")"' EXIT
gcc -O1 -Wall -o "$bin" "$here/tools/c14n_ref.c" $(xml2-config --cflags --libs)
mkdir -p "$here/expected"
rm -f "$here/expected/"*.out
while read -r file label mode node exclude prefixes; do
    [[ -z "$file" || "$file" == \#* ]] && continue
    n=${node%%:*}
    x=${exclude%%:*}
    "$bin" "$here/$file" "$mode" "$n" "$x" "$prefixes" > "$here/expected/${file%.xml}.$label.out"
done < "$here/subsets.txt"
echo "wrote $(ls "$here/expected" | wc -l) files"
