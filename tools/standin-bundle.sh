#!/usr/bin/env bash
# Turn the stand-in application folder into a one-commit git bundle that app hosts can fetch from.
#
# Usage: tools/standin-bundle.sh SOURCE_DIR BUNDLE_FILE
#
# The commit has a fixed author, committer and date, so the same files always give the same commit id and
# a converged host gets no new release. Files the stand-in's .gitignore excludes (node_modules, dist) stay
# out. Prints one line: "created <commit>" when BUNDLE_FILE was written, "unchanged <commit>" when it
# already held that commit.
set -euo pipefail

src=${1:?usage: standin-bundle.sh SOURCE_DIR BUNDLE_FILE}
bundle=${2:?usage: standin-bundle.sh SOURCE_DIR BUNDLE_FILE}
[[ -f $src/manage.py ]] || { echo "stand-in source $src has no manage.py" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export GIT_AUTHOR_NAME=operativos-infra GIT_AUTHOR_EMAIL=operativos-infra@localhost
export GIT_COMMITTER_NAME=operativos-infra GIT_COMMITTER_EMAIL=operativos-infra@localhost
export GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"
# The machine's own git settings (hooks, signing, templates) must not change the commit.
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

cp -a "$src/." "$work/"
rm -rf "$work/.git"
git -C "$work" init --quiet --initial-branch=main
git -C "$work" add --all
git -C "$work" commit --quiet --no-verify --message "Stand-in operativos application"
commit=$(git -C "$work" rev-parse HEAD)

if [[ -f $bundle ]] && git bundle list-heads "$bundle" 2>/dev/null | grep -q "^$commit refs/heads/main$"; then
  echo "unchanged $commit"
  exit 0
fi

mkdir -p "$(dirname "$bundle")"
# Parallel scenarios converge from the same checkout, so each run writes its own temporary file and git lock.
# The rename then replaces the bundle whole, and a reader never sees a partial file.
tmp=$(mktemp "$bundle.XXXXXX")
trap 'rm -rf "$work" "$tmp"' EXIT
git -C "$work" bundle create --quiet "$tmp" main
mv "$tmp" "$bundle"
echo "created $commit"
