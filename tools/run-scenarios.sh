#!/usr/bin/env bash
# Run every molecule scenario, in LANES parallel lanes (default 4, one per scenario), and print each scenario's
# whole output when it finishes. Molecule waits on apt, pip and systemd more than on the CPU: on 2 cores, four
# lanes converged all four scenarios in 13 minutes, while two lanes queued default and deploy one after the
# other for about 40. Exits 1 if any scenario failed.
#
# Usage: tools/run-scenarios.sh [SCENARIO ...]   (default: every folder of molecule/ with a molecule.yml, except
# the on_demand ones below)
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
lanes=${LANES:-4}
logs=$top/.cache/molecule-logs
mkdir -p "$logs"

if (($#)); then
  scenarios=("$@")
else
  # Longest first, so the lanes end at about the same time; scenarios not listed here run last.
  order=(default cluster backup deploy)
  # Run only when named: debian13 repeats the default scenario on Debian 13, whose packages the cluster
  # scenario's Debian 13 hosts already converge and test, and a fifth lane would not fit CI's 45 minutes.
  on_demand=(debian13)
  mapfile -t found < <(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
  scenarios=()
  for name in "${order[@]}"; do
    [[ " ${found[*]} " == *" $name "* ]] && scenarios+=("$name")
  done
  for name in "${found[@]}"; do
    [[ " ${scenarios[*]} ${on_demand[*]} " == *" $name "* ]] || scenarios+=("$name")
  done
fi

run_lane() {
  local lane=$1
  shift
  local name started status
  for name in "$@"; do
    started=$(date +%s)
    echo "[lane $lane] molecule test -s $name: started"
    molecule test --scenario-name "$name" >"$logs/$name.log" 2>&1
    status=$?
    echo "$status $(($(date +%s) - started))" >"$logs/$name.status"
    # One scenario's output at a time, whole, so the CI log stays readable.
    {
      flock 9
      echo "===== molecule test -s $name (lane $lane, exit $status, $(($(date +%s) - started)) s) ====="
      cat "$logs/$name.log"
      echo "===== end of $name ====="
    } 9>"$logs/.print.lock"
  done
}

for name in "${scenarios[@]}"; do
  rm -f "$logs/$name.log" "$logs/$name.status"
done

pids=()
for ((lane = 0; lane < lanes; lane++)); do
  mine=()
  for ((i = lane; i < ${#scenarios[@]}; i += lanes)); do
    mine+=("${scenarios[i]}")
  done
  ((${#mine[@]})) || continue
  run_lane "$lane" "${mine[@]}" &
  pids+=($!)
done
wait "${pids[@]}"

failed=0
echo "Molecule scenarios:"
for name in "${scenarios[@]}"; do
  read -r status seconds <"$logs/$name.status" 2>/dev/null || { status=missing seconds=0; }
  if [[ $status == 0 ]]; then result=passed; else result=failed; failed=$((failed + 1)); fi
  printf '  %-10s %s in %dm%02ds\n' "$name" "$result" $((seconds / 60)) $((seconds % 60))
done
# Print the failure lines again after the table, because CI may show only the end of the log, and a failed
# scenario's whole output may have been printed long before.
for name in "${scenarios[@]}"; do
  read -r status _ <"$logs/$name.status" 2>/dev/null || status=missing
  [[ $status == 0 ]] && continue
  echo "----- $name: the failure lines of $logs/$name.log -----"
  lines=$(sed 's/\x1b\[[0-9;]*m//g' "$logs/$name.log" 2>/dev/null |
    grep -E '^(FAILED|ERROR) |^E  |^(fatal|failed): \[|^CRITICAL|^ERROR  ' | grep -v -e '- RETRYING: ' | tail -n 80)
  # A scenario that failed before its tests (molecule missing or a failed create) has no such lines, so the end
  # of its log is printed instead.
  [[ -n $lines ]] || lines=$(tail -n 20 "$logs/$name.log" 2>/dev/null)
  printf '%s\n' "$lines" | cut -c1-400
done
passed=$((${#scenarios[@]} - failed))
echo "scenarios: $passed passed, $failed failed"
((failed == 0))
