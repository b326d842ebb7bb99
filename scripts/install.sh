#!/usr/bin/env bash
# Installs prunelab as a relocatable bundle under PREFIX (default ~/.local):
#   PREFIX/bin/prunelab                    the binary, which finds its libraries relative to itself
#   PREFIX/lib/prunelab/*.so*              the libtorch libraries it links (they find each other by $ORIGIN)
#   PREFIX/share/bash-completion/completions/prunelab, PREFIX/share/zsh/site-functions/_prunelab,
#   PREFIX/share/fish/vendor_completions.d/prunelab.fish, PREFIX/share/man/man1/prunelab.1
# The folder can be moved or copied (to a cluster's shared disk, say) and still runs, for any user
# who can read it. Run by `make install PREFIX=DIR` after the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-$HOME/.local}
binary=target/release/prunelab
[ -x "$binary" ] || { echo "install: $binary is missing; run make build first" >&2; exit 2; }
command -v patchelf >/dev/null || { echo "install: patchelf is missing (apt-get install patchelf)" >&2; exit 2; }
libtorch=$(readlink -f .libtorch)/lib
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
stage=$(mktemp -d "$PREFIX/.prunelab-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# Everything is assembled in a staging folder first, so a failure leaves the old install as it was.
mkdir -p "$stage/bin" "$stage/lib/prunelab" "$stage/bash" "$stage/zsh" "$stage/fish" "$stage/man"
cp "$binary" "$stage/bin/prunelab"
for lib in $(ldd "$binary" | awk -v dir="$libtorch/" 'index($3, dir) == 1 { print $3 }'); do
  cp -L "$lib" "$stage/lib/prunelab/"
done
patchelf --set-rpath '$ORIGIN/../lib/prunelab' "$stage/bin/prunelab"
"$stage/bin/prunelab" completions bash > "$stage/bash/prunelab"
"$stage/bin/prunelab" completions zsh > "$stage/zsh/_prunelab"
"$stage/bin/prunelab" completions fish > "$stage/fish/prunelab.fish"
"$stage/bin/prunelab" man > "$stage/man/prunelab.1"
chmod -R a+rX "$stage"

mkdir -p "$PREFIX/bin" "$PREFIX/lib" "$PREFIX/share/bash-completion/completions" \
  "$PREFIX/share/zsh/site-functions" "$PREFIX/share/fish/vendor_completions.d" "$PREFIX/share/man/man1"
rm -rf "$PREFIX/lib/prunelab"
mv "$stage/lib/prunelab" "$PREFIX/lib/prunelab"
mv "$stage/bin/prunelab" "$PREFIX/bin/prunelab"
mv "$stage/bash/prunelab" "$PREFIX/share/bash-completion/completions/prunelab"
mv "$stage/zsh/_prunelab" "$PREFIX/share/zsh/site-functions/_prunelab"
mv "$stage/fish/prunelab.fish" "$PREFIX/share/fish/vendor_completions.d/prunelab.fish"
mv "$stage/man/prunelab.1" "$PREFIX/share/man/man1/prunelab.1"
echo "installed $PREFIX/bin/prunelab (libraries in $PREFIX/lib/prunelab, relocatable with the folder)"
