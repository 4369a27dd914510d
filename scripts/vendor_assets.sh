#!/usr/bin/env bash
# Fetch MathJax, RequireJS and the Jupyter widget manager from the npm registry into _vendor/vendor/, so that the
# rendered book typesets maths and shows widgets without reaching a CDN. npm checks each tarball's integrity hash.
set -euo pipefail
cd "$(dirname "$0")/.."
MATHJAX=mathjax@3.2.2
REQUIREJS=requirejs@2.3.8
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.15
dest=_vendor/vendor
stamp="$dest/.versions"
want="$MATHJAX $REQUIREJS $HTML_MANAGER"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "vendor: up to date ($want)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$MATHJAX" "$REQUIREJS" "$HTML_MANAGER" >/dev/null)
rm -rf "$dest"
mkdir -p "$dest/mathjax" "$dest/requirejs" "$dest/html-manager"
for f in "$tmp"/*.tgz; do
  mkdir -p "$tmp/x" && tar -xzf "$f" -C "$tmp/x"
  case "$(basename "$f")" in
    mathjax-*) cp -r "$tmp/x/package/es5/." "$dest/mathjax/" ;;
    requirejs-*) cp "$tmp/x/package/require.js" "$dest/requirejs/" ;;
    jupyter-widgets-html-manager-*) cp "$tmp/x/package/dist/embed-amd.js" "$dest/html-manager/" ;;
  esac
  rm -rf "$tmp/x"
done
for f in mathjax/tex-chtml.js requirejs/require.js html-manager/embed-amd.js; do
  [ -s "$dest/$f" ] || { echo "vendor: $f missing after unpacking" >&2; exit 1; }
done
echo "$want" > "$stamp"
echo "vendor: $want -> $dest ($(du -sh "$dest" | cut -f1))"
