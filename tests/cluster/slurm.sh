#!/usr/bin/env bash
# A single-node SLURM cluster on 127.0.0.1 for the cluster test.
#   slurm.sh install  apt-get install slurm-wlm + munge when missing (needs root)
#   slurm.sh up       write slurm.conf, start munged, slurmctld, slurmd; wait until the node is idle
#   slurm.sh down     stop the daemons this script started and remove its slurm.conf
#                     (a slurm.conf without a controller makes every `scontrol` call,
#                     and so the SLURM executor plugin's import, wait 9 s)
# Accounting is off; MinJobAge is long so `squeue` still lists finished jobs
# while snakemake-executor-plugin-slurm polls their status.
# The node has 2 fake GPUs and at least 8 CPUs, so jobs that each take a GPU and
# several threads can run side by side on a 2-core machine without GPUs:
# - slurm-wlm 22.05 drops a GPU without File= ("Removing file-less GPU"), so gres.conf
#   names two character devices made in $STATE with the numbers of /dev/null
#   (GPU0/GPU1); nothing opens them (TaskPlugin=task/none binds no device). A job sees
#   CUDA_VISIBLE_DEVICES but torch finds no GPU, so hwbench trains on the CPU.
# - SlurmdParameters=config_overrides makes slurmd report the configured CPUs.
# - scontrol show job lists a job's GPUs as TresPerJob=gres:gpu:N (TRES would need slurmdbd).
# - Two partitions on the one node, `debug` (the default) and `gpu`, so a test can send
#   the training jobs to a partition named on the command line (docs/cluster.md).
# - ProctrackType=proctrack/cgroup where the cgroup v1 freezer is mounted, as at most
#   sites: slurmstepd then signals only a step's tasks (the srun'd snakemake), not their
#   children, which is what a preemption warning has to get through. Elsewhere
#   proctrack/linuxproc (it signals every process of the step).
set -euo pipefail
STATE=${HWBENCH_SLURM_STATE:-/tmp/hwbench-slurm}
CONF_DIR=/etc/slurm

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
}

MARK="# written by hwbench tests/cluster/slurm.sh"

is_ours() {
    head -n 1 "$1" | grep -qxF "$MARK"
}

up() {
    mkdir -p "$STATE" "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
    local node cpus mem
    node=$(hostname -s)
    cpus=$(nproc)
    if [ "$cpus" -lt 8 ]; then cpus=8; fi
    mem=$(($(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 2048))
    local proctrack=proctrack/linuxproc
    if [ -d /sys/fs/cgroup/freezer ]; then proctrack=proctrack/cgroup; fi
    if [ -e "$CONF_DIR/slurm.conf" ] && ! is_ours "$CONF_DIR/slurm.conf"; then
        cp -p "$CONF_DIR/slurm.conf" "$STATE/slurm.conf.orig"  # restored by down
    fi
    cat >"$CONF_DIR/slurm.conf" <<CONF
$MARK
ClusterName=hwbench
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ProctrackType=$proctrack
TaskPlugin=task/none
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
GresTypes=gpu
SlurmdParameters=config_overrides
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$node MaxTime=INFINITE State=UP
CONF
    if [ -e "$CONF_DIR/cgroup.conf" ] && ! is_ours "$CONF_DIR/cgroup.conf"; then
        cp -p "$CONF_DIR/cgroup.conf" "$STATE/cgroup.conf.orig"  # restored by down
    fi
    cat >"$CONF_DIR/cgroup.conf" <<CONF
$MARK
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
CONF
    if [ -e "$CONF_DIR/gres.conf" ] && ! is_ours "$CONF_DIR/gres.conf"; then
        cp -p "$CONF_DIR/gres.conf" "$STATE/gres.conf.orig"  # restored by down
    fi
    for i in 0 1; do
        rm -f "$STATE/fakegpu$i"
        mknod "$STATE/fakegpu$i" c 1 3 2>/dev/null || touch "$STATE/fakegpu$i"  # slurmd warns on a plain file but counts it
    done
    cat >"$CONF_DIR/gres.conf" <<CONF
$MARK
NodeName=$node Name=gpu File=$STATE/fakegpu[0-1]
CONF
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chmod 400 /etc/munge/munge.key
    chown -R root:root /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    munged --force --pid-file="$STATE/munged.pid" --socket=/run/munge/munge.socket.2
    slurmctld -i
    slurmd -N "$node"
    for _ in $(seq 60); do
        if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
            sinfo
            echo "$proctrack"
            return 0
        fi
        sleep 1
    done
    echo "SLURM node did not become idle; logs in $STATE" >&2
    tail -n 20 "$STATE"/*.log >&2 || true
    return 1
}

down() {
    for d in slurmd slurmctld munged; do
        if [ -s "$STATE/$d.pid" ]; then
            kill "$(cat "$STATE/$d.pid")" 2>/dev/null || true
        fi
    done
    sleep 1
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    if [ -e "$CONF_DIR/slurm.conf" ] && is_ours "$CONF_DIR/slurm.conf"; then
        rm -f "$CONF_DIR/slurm.conf"
        if [ -e "$STATE/slurm.conf.orig" ]; then
            mv "$STATE/slurm.conf.orig" "$CONF_DIR/slurm.conf"
        fi
    fi
    for conf in gres.conf cgroup.conf; do
        if [ -e "$CONF_DIR/$conf" ] && is_ours "$CONF_DIR/$conf"; then
            rm -f "$CONF_DIR/$conf"
            if [ -e "$STATE/$conf.orig" ]; then
                mv "$STATE/$conf.orig" "$CONF_DIR/$conf"
            fi
        fi
    done
}

"${1:?usage: slurm.sh install|up|down}"
