#!/usr/bin/env bash
# Object-store artifact benchmark (issue: backup and restore to s3:// artifact paths).
#
# A local SeaweedFS S3 server and real sshd VMs (scripts/start-vm.sh). Timed in the same run,
# with the same cipher (aes128-gcm, bbr's first choice), alternating, medians of RUNS:
#
#   1 VM, one job of SIZE_MIB (default 1024) of incompressible data in 8 files:
#     backup baseline:  ssh vm 'sudo tar -C dir -c .' | tee >(openssl dgst -sha256) | aws s3 cp - s3://...
#     bbr:              bbr director backup --artifact-path s3://bench/PREFIX
#     restore baseline: aws s3 cp s3://... - | tee >(openssl dgst -sha256) | ssh vm 'sudo tar -C dir -x'
#     bbr:              bbr director restore --artifact-path s3://bench/PREFIX/<artifact>
#   DEP_VMS VMs (default 4), one job of DEP_MIB (default 256) in 2 files each, behind a small
#   fake BOSH director (Python, HTTPS, below; SSH setup really creates the temporary user):
#     the same baselines run once per VM in parallel, against `bbr deployment backup|restore`.
#
# For every bbr run: peak RSS ("Maximum resident set size" of /usr/bin/time -v), the bytes
# bbr made the kernel write to the local disk ("File system outputs" x 512, i.e. the
# process's /proc/<pid>/io write_bytes; its log goes to a pipe, so it is not counted), and the
# files left in its (empty) working directory: an artifact streamed to the store must not be
# staged locally. Targets: ratio <= 1.0, RSS < 64 MiB for one VM and < 128 MiB for four,
# 0 bytes written, nothing left. The first run also
# checks the stored artifact (`bbr artifact validate`) and the restored files (cmp).
# The store's own disk (SeaweedFS is another process) is not counted; its page cache is warm
# for both sides of a restore.
#
# Needs root. Env: SIZE_MIB, DEP_VMS, DEP_MIB, RUNS, BBR (a built bbr; else it is built with
# cargo, into CARGO_TARGET_DIR if set), KEEP=1 keeps the work dir.
set -euo pipefail
SIZE_MIB=${SIZE_MIB:-1024}
DEP_VMS=${DEP_VMS:-4}
DEP_MIB=${DEP_MIB:-256}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TOOLS=${BBR_STORAGE_TOOLS:-/opt/bbr-storage-tools}
bash .ci/install-deps.sh >/dev/null
bash .ci/install-storage-deps.sh >/dev/null
command -v /usr/bin/time >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null
if [ -z "${BBR:-}" ]; then
  cargo build --release -q -p bbr-cli
  BBR="${CARGO_TARGET_DIR:-$ROOT/target}/release/bbr"
fi
AWS="$TOOLS/venv/bin/aws"
VM1_ADDR=127.0.0.90; VM_PORT=2299; DIR_ADDR=127.0.0.95; S3_ADDR=127.0.0.96

WORK=$(mktemp -d /tmp/bbr-bench-store.XXXXXX)
chmod 0755 "$WORK"   # sshd reads authorized_keys as the login user
PIDS=()
cleanup() {
  set +e
  [ ${#PIDS[@]} -eq 0 ] || bash scripts/stop-pid.sh "${PIDS[@]}"
  # temporary users the fake director made and bbr's cleanup did not remove
  for u in $(sort -u "$WORK/users" 2>/dev/null); do id "$u" >/dev/null 2>&1 && userdel -r "$u" 2>/dev/null; done
  [ "${KEEP:-}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
busiest() { # the 5 processes with the most CPU over the last second
  top -b -n 2 -d 1 -o %CPU -w 200 | awk '/^top -/ {f++} f == 2' | sed -n '8,12p' |
    awk '{printf "  %5s%% %s\n", $9, $12}'
}
echo "machine at start: load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs; busiest processes:"
busiest

# --- the object store -----------------------------------------------------------------------
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
S3_PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('$S3_ADDR', 0)); print(s.getsockname()[1])")
PIDS+=("$(bash scripts/start-seaweedfs.sh "$S3_ADDR" "$S3_PORT" "$WORK/weed")")
export AWS_ENDPOINT_URL="http://$S3_ADDR:$S3_PORT"
unset AWS_CA_BUNDLE AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN
aws_() { AWS_CONFIG_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 "$AWS" "$@"; }
aws_ s3 mb s3://bench >/dev/null

# --- the VMs --------------------------------------------------------------------------------
mkfiles() { # DIR COUNT MIB_EACH: incompressible files part-1..COUNT
  local i
  mkdir -p "$1"
  for i in $(seq 1 "$2"); do openssl rand -out "$1/part-$i" $(($3 * 1024 * 1024)); done
}
install_job() { # VAR_VCAP: job "bench" copies the prepared files into its artifact
  mkdir -p "$1/jobs/bench/bin/bbr"
  printf '#!/bin/sh\ncp -al /var/vcap/store/bench-data/. "$BBR_ARTIFACT_DIRECTORY"\n' > "$1/jobs/bench/bin/bbr/backup"
  printf '#!/bin/sh\nmkdir -p /var/vcap/store/bbr-restored\ncp -al "$BBR_ARTIFACT_DIRECTORY/." /var/vcap/store/bbr-restored\n' \
    > "$1/jobs/bench/bin/bbr/restore"
  chmod 0755 "$1/jobs/bench/bin/bbr/"*
}
start_vm() { # NAME ADDR
  PIDS+=("$(bash scripts/start-vm.sh "$WORK/$1" "$2" "$VM_PORT")")
}
ssh_() { # NAME ADDR COMMAND
  ssh -q -i "$WORK/$1/client_key" -p "$VM_PORT" -c aes128-gcm@openssh.com -o BatchMode=yes \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$WORK/$1/known_hosts" vcap@"$2" "$3"
}
start_vm vm1 "$VM1_ADDR"
mkfiles "$WORK/vm1/var-vcap/store/bench-data" 8 $((SIZE_MIB / 8))
install_job "$WORK/vm1/var-vcap"
DEP_ADDRS=()
for i in $(seq 1 "$DEP_VMS"); do
  a=127.0.0.$((100 + i)); DEP_ADDRS+=("$a")
  start_vm "dep$i" "$a"
  mkfiles "$WORK/dep$i/var-vcap/store/bench-data" 2 $((DEP_MIB / 2))
  install_job "$WORK/dep$i/var-vcap"
done
sync

# --- a fake BOSH director for deployment mode -----------------------------------------------
# Only what `bbr deployment` calls (docs/director-api.md): /info (basic auth), vms and ssh
# tasks, the manifest. SSH setup creates the user (as a BOSH agent does, sudo through the
# group bosh_sshers, like the simulator in crates/bbr-director-sim) and writes its key into
# each VM's authorized_keys/<user>; cleanup removes both.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
  -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$DIR_ADDR" \
  -keyout "$WORK/dir.key" -out "$WORK/dir.csr" 2>/dev/null
openssl x509 -req -in "$WORK/dir.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days 2 -out "$WORK/dir.pem" -extfile <(printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' "$DIR_ADDR") 2>/dev/null
getent group bosh_sshers >/dev/null || groupadd bosh_sshers
[ -f /etc/sudoers.d/bosh_sshers ] || { echo '%bosh_sshers ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/.bosh_sshers.$$ &&
  chmod 0440 /etc/sudoers.d/.bosh_sshers.$$ && mv -f /etc/sudoers.d/.bosh_sshers.$$ /etc/sudoers.d/bosh_sshers; }
python3 - "$WORK" "$DEP_VMS" "$VM_PORT" "${DEP_ADDRS[@]}" > "$WORK/instances.json" <<'PY'
import json, sys
work, n, port, addrs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
out = []
for i in range(n):
    with open(f"{work}/dep{i+1}/host_key.pub") as f:
        key = " ".join(f.read().split()[:2])
    out.append({"id": f"0000000{i}-bench-node", "index": i, "ip": f"{addrs[i]}:{port}",
                "statedir": f"{work}/dep{i+1}", "host_public_key": key})
json.dump(out, sys.stdout)
PY
DIR_PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('$DIR_ADDR', 0)); print(s.getsockname()[1])")
cat > "$WORK/director.py" <<'PY'
import base64, fcntl, http.server, json, os, re, ssl, subprocess, sys, threading
work, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
instances = json.load(open(f"{work}/instances.json"))
MANIFEST = ("name: bench\nreleases:\n- name: bench-release\n  version: latest\n"
            "instance_groups:\n- name: node\n  instances: %d\n  jobs:\n"
            "  - name: bench\n    release: bench-release\n" % len(instances))
AUTH = "Basic " + base64.b64encode(b"admin:bench-password").decode()
tasks, lock = {}, threading.Lock()

def users_lock():
    os.makedirs("/tmp/bbr-testkit", exist_ok=True)
    f = open("/tmp/bbr-testkit/users.lock", "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f

def keys_path(inst, user):
    return f"{inst['statedir']}/authorized_keys/{user}"

def ssh(req):
    cmd, params, target = req["command"], req.get("params", {}), req.get("target", {})
    wanted = set(target.get("ids", [])) | set(target.get("indexes", []))
    chosen = [i for i in instances if not wanted or i["id"] in wanted or str(i["index"]) in wanted]
    entries = []
    with users_lock():
        if cmd == "setup":
            user = params["user"]
            assert re.fullmatch(r"bosh_[0-9a-f]{15}", user), user
            with open(f"{work}/users", "a") as f:
                f.write(user + "\n")
            if subprocess.run(["id", user], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "-m", "-s", "/bin/bash", "-p", "*", "-G", "bosh_sshers", user], check=True)
            for i in chosen:
                with open(keys_path(i, user), "w") as f:
                    f.write(params["public_key"].strip() + "\n")
                os.chmod(keys_path(i, user), 0o644)
        else:
            user = params["user_regex"].lstrip("^")
            for i in chosen:
                if os.path.exists(keys_path(i, user)):
                    os.remove(keys_path(i, user))
            if not any(os.path.exists(keys_path(i, user)) for i in instances):
                subprocess.run(["userdel", "-r", user], capture_output=True)
    for i in chosen:
        entries.append({"command": cmd, "status": "success", "ip": i["ip"], "host_public_key": i["host_public_key"],
                        "id": i["id"], "index": i["index"], "job": "node"})
    return json.dumps(entries) + "\n"

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, code, body="", headers=()):
        data = body.encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def task(self, result):
        with lock:
            tid = len(tasks) + 1
            tasks[tid] = result
        self.answer(302, "", [("Location", f"https://{addr}:{port}/tasks/{tid}")])
    def authorized(self):
        if self.headers.get("Authorization") == AUTH:
            return True
        self.answer(401, '{"code":600000,"description":"Not authorized"}')
        return False
    def do_GET(self):
        p = self.path
        if p == "/info":
            return self.answer(200, json.dumps({"name": "bench", "uuid": "bench", "version": "280.0.0",
                                                "user_authentication": {"type": "basic", "options": {}}}))
        if not self.authorized():
            return
        if p == "/deployments/bench/vms?format=full":
            return self.task("".join(json.dumps({"job_name": "node", "index": i["index"], "id": i["id"],
                                                 "ips": [i["ip"].split(":")[0]], "bootstrap": i["index"] == 0,
                                                 "job_state": "running"}) + "\n" for i in instances))
        if p == "/deployments/bench":
            return self.answer(200, json.dumps({"manifest": MANIFEST}))
        m = re.fullmatch(r"/tasks/(\d+)(/output\?type=(\w+))?", p)
        if m and int(m.group(1)) in tasks:
            tid = int(m.group(1))
            if m.group(3) is None:
                return self.answer(200, json.dumps({"id": tid, "state": "done", "description": "bench", "result": ""}))
            return self.answer(200, tasks[tid] if m.group(3) == "result" else "")
        self.answer(404, '{"code":70000,"description":"not found"}')
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self.authorized():
            return
        if self.path == "/deployments/bench/ssh":
            return self.task(ssh(json.loads(body)))
        self.answer(404, '{"code":70000,"description":"not found"}')

srv = http.server.ThreadingHTTPServer((addr, port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{work}/dir.pem", f"{work}/dir.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("listening", flush=True)
srv.serve_forever()
PY
setsid python3 "$WORK/director.py" "$WORK" "$DIR_ADDR" "$DIR_PORT" > "$WORK/director.log" 2>&1 < /dev/null &
PIDS+=("$!")
for _ in $(seq 1 300); do grep -q listening "$WORK/director.log" && break; sleep 0.05; done
grep -q listening "$WORK/director.log" || { cat "$WORK/director.log" >&2; exit 1; }

# --- the runs -------------------------------------------------------------------------------
now() { date +%s.%N; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
max() { tr ' ' '\n' | grep . | sort -n | tail -1; }
declare -A T RSS DISK LEFT
timed() { # NAME COMMAND...
  local name=$1 s e; shift
  sync; s=$(now); "$@"; e=$(now)
  T[$name]+="$(echo "$e - $s" | bc -l) "
}
bbr_() { # NAME MODE-ARGS... : bbr in an empty working directory under /usr/bin/time -v
  local name=$1; shift
  local cwd="$WORK/cwd-$name" s e
  rm -rf "$cwd"; mkdir -p "$cwd"
  sync; s=$(now)
  # bbr's log goes through a pipe, so that its own write_bytes count nothing but the disk
  # writes it makes otherwise
  if ! (cd "$cwd" && /usr/bin/time -v -o "$WORK/time-$name" "$BBR" "$@" 2>&1 | cat > "$WORK/log-$name"); then
    cat "$WORK/log-$name" "$WORK/time-$name" >&2; echo "bbr $name failed" >&2; exit 1
  fi
  e=$(now)
  T[$name]+="$(echo "$e - $s" | bc -l) "
  RSS[$name]+="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time-$name") "
  DISK[$name]+="$(( $(awk -F': ' '/File system outputs/ {print $2}' "$WORK/time-$name") * 512 )) "
  LEFT[$name]+="$(find "$cwd" -mindepth 1 | wc -l) "
}
DIRECTOR=(director --host "$VM1_ADDR:$VM_PORT" -u vcap --key "$WORK/vm1/client_key"
          --known-hosts "$WORK/vm1/known_hosts")
DEPLOYMENT=(deployment -t "$DIR_ADDR:$DIR_PORT" -u admin -p bench-password -d bench --ca-cert "$WORK/ca.pem")
artifact_in() { aws_ s3 ls "$1/" | awk '$1 == "PRE" {sub("/$", "", $2); print $2}'; }
TAR_OUT='sudo -n tar -C /var/vcap/store/bench-data -c .'
TAR_IN='sudo -n tar -C /var/vcap/store/restore-target -x'
RESET_TARGET='sudo -n rm -rf /var/vcap/store/restore-target /var/vcap/store/bbr-restored /var/vcap/store/bbr-backup && sudo -n mkdir -p /var/vcap/store/restore-target'
base_backup() { # VM ADDR URL
  ssh_ "$1" "$2" "$TAR_OUT" | tee >(openssl dgst -sha256 > /dev/null) | aws_ s3 cp --quiet - "$3"
}
base_restore() { # VM ADDR URL
  aws_ s3 cp --quiet "$3" - | tee >(openssl dgst -sha256 > /dev/null) | ssh_ "$1" "$2" "$TAR_IN"
}
dep_parallel() { # base_backup|base_restore RUN
  local pids=() i
  for i in $(seq 1 "$DEP_VMS"); do "$1" "dep$i" "${DEP_ADDRS[i-1]}" "s3://bench/dbase-$2/$i.tar" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
}
reset_all() { # the restore targets and bbr's remote directories of every VM
  local i
  ssh_ vm1 "$VM1_ADDR" "$RESET_TARGET"
  for i in $(seq 1 "$DEP_VMS"); do ssh_ "dep$i" "${DEP_ADDRS[i-1]}" "$RESET_TARGET"; done
}
same_files() { # DIR_A DIR_B: every part-* equal
  local f
  for f in "$1"/part-*; do cmp -s "$f" "$2/$(basename "$f")" || { echo "restored $2/$(basename "$f") differs from $f" >&2; exit 1; }; done
}
# The first exec of a freshly built binary updates its atime (relatime): that dirties one inode
# block, counted as 4 KiB in the process's write_bytes. Done here, so that the runs count only
# what bbr itself writes.
"$BBR" version > /dev/null
for r in $(seq 1 "$RUNS"); do
  reset_all
  timed b1 base_backup vm1 "$VM1_ADDR" "s3://bench/base-$r/vm1.tar"
  bbr_ x1 "${DIRECTOR[@]}" backup --artifact-path "s3://bench/bbr-$r"
  timed bd dep_parallel base_backup "$r"
  bbr_ xd "${DEPLOYMENT[@]}" backup --artifact-path "s3://bench/dbbr-$r"
  a1=$(artifact_in "s3://bench/bbr-$r"); ad=$(artifact_in "s3://bench/dbbr-$r")
  [ -n "$a1" ] && [ -n "$ad" ] || { echo "no artifact under s3://bench/bbr-$r or dbbr-$r" >&2; exit 1; }
  if [ "$r" = 1 ]; then
    "$BBR" artifact validate "s3://bench/bbr-$r/$a1" > "$WORK/validate1" || { cat "$WORK/validate1" >&2; exit 1; }
    "$BBR" artifact validate "s3://bench/dbbr-$r/$ad" > "$WORK/validated" || { cat "$WORK/validated" >&2; exit 1; }
  fi
  timed r1 base_restore vm1 "$VM1_ADDR" "s3://bench/base-$r/vm1.tar"
  bbr_ y1 "${DIRECTOR[@]}" restore --artifact-path "s3://bench/bbr-$r/$a1"
  if [ "$r" = 1 ]; then
    same_files "$WORK/vm1/var-vcap/store/bench-data" "$WORK/vm1/var-vcap/store/restore-target"
    same_files "$WORK/vm1/var-vcap/store/bench-data" "$WORK/vm1/var-vcap/store/bbr-restored"
  fi
  timed rd dep_parallel base_restore "$r"
  bbr_ yd "${DEPLOYMENT[@]}" restore --artifact-path "s3://bench/dbbr-$r/$ad"
  if [ "$r" = 1 ]; then
    for i in $(seq 1 "$DEP_VMS"); do
      same_files "$WORK/dep$i/var-vcap/store/bench-data" "$WORK/dep$i/var-vcap/store/restore-target"
      same_files "$WORK/dep$i/var-vcap/store/bench-data" "$WORK/dep$i/var-vcap/store/bbr-restored"
    done
  fi
  for p in base bbr dbase dbbr; do aws_ s3 rm --quiet --recursive "s3://bench/$p-$r/"; done
  last() { echo "${T[$1]}" | awk '{print $NF}'; }
  echo "run $r (s, baseline/bbr): 1 VM backup $(last b1)/$(last x1) restore $(last r1)/$(last y1);" \
    "$DEP_VMS VMs backup $(last bd)/$(last xd) restore $(last rd)/$(last yd); load $(cut -d' ' -f1 /proc/loadavg)"
done

# --- the table ------------------------------------------------------------------------------
echo "machine at end: load $(cut -d' ' -f1-3 /proc/loadavg); busiest processes:"
busiest
printf 'SeaweedFS S3 on %s, cipher aes128-gcm, %d runs: times are medians; RSS, disk bytes and files left are the max over runs\n' \
  "$S3_ADDR" "$RUNS"
printf '%-28s %9s %8s %6s %-6s %8s %-6s %10s %4s\n' case baseline bbr ratio target 'bbr RSS' target 'disk bytes' left
row() { # LABEL BASE BBR TARGET_RSS_MIB
  local b x
  b=$(echo "${T[$2]}" | median); x=$(echo "${T[$3]}" | median)
  printf '%-28s %8.2fs %7.2fs %6.3f %-6s %4d MiB %-6s %10d %4d\n' "$1" "$b" "$x" "$(echo "$x / $b" | bc -l)" \
    '<=1.0' "$(( $(echo "${RSS[$3]}" | max) / 1024 ))" "<$4" "$(echo "${DISK[$3]}" | max)" "$(echo "${LEFT[$3]}" | max)"
}
row "backup  1 VM x $SIZE_MIB MiB" b1 x1 64
row "restore 1 VM x $SIZE_MIB MiB" r1 y1 64
row "backup  $DEP_VMS VMs x $DEP_MIB MiB" bd xd 128
row "restore $DEP_VMS VMs x $DEP_MIB MiB" rd yd 128
echo "targets: disk bytes 0 and no file left in bbr's working directory"
echo "every run (s):"
for k in b1 x1 r1 y1 bd xd rd yd; do printf ' %s=[%s]' "$k" "${T[$k]% }"; done; echo
echo "every bbr run (peak RSS KiB / disk bytes):"
for k in x1 y1 xd yd; do printf ' %s=[%s / %s]' "$k" "${RSS[$k]% }" "${DISK[$k]% }"; done; echo
