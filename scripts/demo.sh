#!/usr/bin/env bash
# The kbv3 walk-through (`make demo`): a local hcloud-sim seeded with the
# PH3-01 fleet, then PH3-01, the PH3-02 dry run, PH3-02 confirmed, PH3-02
# again (nothing to do), and the inventory graph. As root, seven servers get
# real loop-device volumes that are formatted and mounted under .demo/mnt.
# Everything is stopped, unmounted and released at the end, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=$root/.demo
bin=$root/target/x86_64-unknown-linux-gnu/release
real_hosts="minio-01 db-postgres-01 redis-01 mail-mx-01 builder-01 haproxy-01 crm-01"

cleanup() {
    if [ -d "$demo/mnt" ]; then
        findmnt -rn -o TARGET | grep "^$demo/mnt" | sort -r | xargs -r -n1 umount -l || true
    fi
    if [ -n "${sim_pid:-}" ] && kill -0 "$sim_pid" 2>/dev/null; then
        kill -TERM "$sim_pid"; wait "$sim_pid" || true
    fi
}
trap cleanup EXIT

rm -rf "$demo"
mkdir -p "$demo/fleet" "$demo/logs"
cp servers/servers_v3.tsv servers/volume_rules_v3.tsv "$demo/fleet/"
mkdir -p "$demo/fstab.d"   # one fstab per simulated host, as real servers have

sim_args=(--token "demo-$RANDOM$RANDOM" --seed servers/hcloud-sim-seed.json --action-ms 200
          --request-log "$demo/logs/requests.jsonl")
host_side=false
if [ "$(id -u)" -eq 0 ]; then
    sim_args+=(--block-devices "$demo/devices" --block-device-servers "${real_hosts// /,}")
    host_side=true
fi
coproc SIM { exec "$bin/hcloud-sim" "${sim_args[@]}" 2>"$demo/logs/hcloud-sim.log"; }
sim_pid=$SIM_PID
read -r endpoint <&"${SIM[0]}"
export HCLOUD_ENDPOINT=$endpoint
export HCLOUD_TOKEN=${sim_args[1]}
export KBV3_FLEET_DIR=$demo/fleet PATH=$root/.venv/bin:$PATH ANSIBLE_CONFIG=$root/ansible.cfg

# Test inventory overlay: nothing is ever contacted over the network; seven
# servers run their host side on this machine, the others skip it.
python3 - "$demo/overlay.yml" "$demo/fstab.d" "$host_side" $real_hosts <<'PY'
import json, sys
out, fstabs, host_side, real = sys.argv[1], sys.argv[2], sys.argv[3] == "true", set(sys.argv[4:])
hosts = [l.split("\t")[0] for l in open("servers/servers_v3.tsv").read().splitlines()[1:]]
json.dump({"all": {"hosts": {h: {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                                 "kbv3_host_side": host_side and h in real, "kbv3_fstab": f"{fstabs}/{h}"}
                             for h in hosts}}}, open(out, "w"))
PY
extra=$(printf '{"kbv3_mount_prefix": "%s/mnt"}' "$demo")
playbook() {
    ansible-playbook -i inventory/kbv3_inventory -i "$demo/overlay.yml" -e "$extra" "$@"
}
requests() { wc -l < "$demo/logs/requests.jsonl"; }
expect_failure() { ! "$@"; }
mutating() { grep -vc '"method":"GET"' "$demo/logs/requests.jsonl" || true; }
step() {
    local name=$1 log=$2; shift 2
    local before=$(requests) before_mut=$(mutating) t0=$EPOCHREALTIME
    "$@" > "$demo/logs/$log" 2>&1 || { echo "FAILED: $name (see $demo/logs/$log)"; tail -30 "$demo/logs/$log"; exit 1; }
    printf '\n== %s  (%.1f s, %d API requests, %d mutating)\n' "$name" "$(awk "BEGIN {print $EPOCHREALTIME - $t0}")" \
        $(( $(requests) - before )) $(( $(mutating) - before_mut ))
}
show_summary() { sed -n '/TASK \[Summarise the run\]/,/^$/p' "$demo/logs/$1" | grep -- "- " | sed "s/^ *- '\\{0,1\\}/   /; s/'$//"; }

echo "hcloud-sim at $endpoint (host side on this machine: $host_side)"
step "PH3-01: plan, snapshot, diff" ph3-01.log playbook playbooks/ph3-01.yml
grep -E "PH3-01 plan:|Existing volumes:|to delete:|to create:|to fix:|ok: +[0-9]|left alone:|confirmation code:" "$demo/logs/ph3-01.log" \
    | sed "s/^ *- '\\{0,1\\}/   /; s/'$//"
# The code PH3-01 printed: the first 12 hex digits of the diff file's sha256.
code=$(sed -n "s/.*confirmation code: \([0-9a-f]\{12\}\).*/\1/p" "$demo/logs/ph3-01.log" | head -1)
[ "$code" = "$(sha256sum "$demo/fleet/volume_diff_v3.json" | cut -c1-12)" ] || { echo "confirmation code mismatch"; exit 1; }
step "PH3-02 dry run (--check --diff)" ph3-02-dry-run.log playbook playbooks/ph3-02.yml --check --diff
grep -m1 "confirmation code:" "$demo/logs/ph3-02-dry-run.log" | sed "s/^ *- '\\{0,1\\}/   /; s/'$//"
show_summary ph3-02-dry-run.log
step "PH3-02 without the code (refused, nothing changed)" ph3-02-refused.log expect_failure playbook playbooks/ph3-02.yml -e kbv3_confirm_destroy=true
grep -m1 -o "This run would delete [0-9]* volumes ([0-9]* GB)" "$demo/logs/ph3-02-refused.log" | sed 's/^/   /'
step "PH3-02 confirmed with code $code" ph3-02.log playbook playbooks/ph3-02.yml -e "kbv3_confirm_destroy=$code"
show_summary ph3-02.log
step "PH3-02 again (nothing to do)" ph3-02-again.log playbook playbooks/ph3-02.yml -e "kbv3_confirm_destroy=$code"
show_summary ph3-02-again.log
if [ "$host_side" = true ]; then
    echo; echo "== mounted volumes"
    findmnt -rn -o SOURCE,TARGET,FSTYPE | grep "$demo/mnt" | sed 's/^/   /'
fi
echo; echo "== ansible-inventory --graph (first lines)"
ansible-inventory -i inventory/kbv3_inventory --graph | head -12 | sed 's/^/   /'
cleanup
echo
echo "Outputs: $demo/fleet (plan, snapshot, diff), $demo/logs (playbook logs, API request log)."
echo "The simulator is stopped; mounts and loop devices are released."
