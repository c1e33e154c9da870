#!/usr/bin/env bash
# Build the documentation site: docs/build.sh [OUT [SRC]] (default OUT docs/_build, SRC docs).
#   -W --keep-going: every warning fails the build, all of them reported first;
#   -n (nitpicky): a cross-reference to a missing Python name is a warning, as MyST makes a
#      Markdown link to a missing page, heading anchor or file: so broken internal links fail.
# External http(s) links are not followed (no network in CI).
# Needs the docs extra: pip install -e '.[docs]'
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/_build}"
src="${2:-docs}"
python -m sphinx -W --keep-going -n -q -b html "$src" "$out/html"
echo "docs: built $out/html/index.html (warnings as errors, internal links checked)"
