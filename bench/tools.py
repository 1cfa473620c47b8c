"""How the benchmark drives each contender: ipvlan-hook as runc runs a hook (`Ours`), the CNI
macvlan plugin with host-local IPAM (`Cni`), ipvlan-hook as a CNI runtime runs it, as the plugin
or as the macvlan plugin's IPAM (`CniOurs`), netavark (`Netavark`) and the `ip -batch` floor
(`IpBatch`) and its tight form (`IpTight`), plus the networks they are given and the lease
stores' disk formats for the scale
phase. Kept apart from the phases so that a phase says what it measures and this file how each
tool is started; every tool spawns through the context's Timer (harness.py)."""

import ipaddress
import json
import os
import shutil
import tempfile

from harness import CLONE_NEWNET, HERE, SYS_PATH, cid, must, setns, sh

CNI_DIR = "/usr/lib/cni"
NETAVARK = "/usr/lib/podman/netavark"

# Our networks (`ipvlan-hook network create`): v4 and dual stack, with the state on disk and on
# the tmpfs, and the one the scale phase fills with leases.
NET4, NET4_TMPFS, NET_DUAL, NET_DUAL_TMPFS = "bench4", "bench4t", "benchd", "benchdt"
# The second network of a container on two (`ipvlan.networks`), beside NET4.
NET4_SECOND = "bench4b"
NET_SCALE, SCALE_SUBNET = "scale", "10.50.0.0/16"
# The networks of the CNI phase: ours as the CNI plugin, and ours as the macvlan plugin's IPAM.
NET_CNI, NET_CNI_IPAM = "benchcni", "benchipam"
# How the report names the CNI phase's contenders.
CNI_OURS, CNI_OUR_IPAM, CNI_HOST_LOCAL = "ours, CNI plugin", "CNI macvlan + our IPAM", "CNI macvlan+host-local"
CNI_SCALE_SUBNET = "10.60.0.0/16"
# How the report names the tight floor (IpTight).
TIGHT = "ip -n -batch (tight floor)"


class Ours:
    def __init__(self, timer, bin_path, config, state, network, bundle_config):
        self.timer = timer
        self.bin, self.config, self.state, self.network = bin_path, config, state, network
        self.bundle_config = bundle_config
        self.bundle = tempfile.mkdtemp(prefix="bundle-", dir=os.path.dirname(config))
        self._write_bundle(None)

    def _write_bundle(self, netns_path):
        cfg = json.loads(json.dumps(self.bundle_config))
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns.pop("path", None)
                if netns_path:
                    ns["path"] = netns_path
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(cfg, f, indent="\t")

    def argv(self, stage):
        """As runtimes run it (hooks.d, config.json): `hook STAGE`, the directories in `env()`."""
        return [self.bin, "hook", stage]

    def env(self):
        """A hook's whole environment, as a hooks.d file's `env` would set it."""
        return {"IPVLAN_HOOK_CONFIG_DIR": self.config, "IPVLAN_HOOK_STATE_DIR": self.state}

    def state_json(self, id_, pid, status, network=None):
        """`network`: a name (`ipvlan.network`), or a list of them (`ipvlan.networks`)."""
        if isinstance(network, list):
            annotations = {"ipvlan.networks": ",".join(network)}
        else:
            annotations = {"ipvlan.network": network or self.network}
        s = {
            "ociVersion": "1.0.2-dev",
            "id": id_,
            "status": status,
            "bundle": self.bundle,
            "annotations": annotations,
        }
        if pid:
            s["pid"] = pid
        return json.dumps(s).encode()

    def setup(self, ctr, id_, network=None):
        return self.timer.timed(self.argv("createRuntime"), self.state_json(id_, ctr.pid, "creating", network), self.env())

    def teardown(self, id_, network=None):
        return self.timer.timed(self.argv("poststop"), self.state_json(id_, None, "stopped", network), self.env())

    def noop(self, ctr):
        s = json.dumps({"ociVersion": "1.0.2-dev", "id": cid(), "status": "creating",
                        "pid": ctr.pid, "bundle": self.bundle, "annotations": {}}).encode()
        return self.timer.timed(self.argv("createRuntime"), s, self.env())


class Cni:
    def __init__(self, timer, name, data_dir, v4, v6=None, plugin="macvlan", master="p0", mode="bridge"):
        ranges = [[{"subnet": v4, "gateway": str(ipaddress.ip_network(v4)[1])}]]
        routes = [{"dst": "0.0.0.0/0"}]
        if v6:
            ranges.append([{"subnet": v6, "gateway": str(ipaddress.ip_network(v6)[1])}])
            routes.append({"dst": "::/0"})
        self.timer = timer
        self.name = name
        self.data_dir = data_dir
        self.plugin = f"{CNI_DIR}/{plugin}"
        self.cni_path = CNI_DIR
        self.conf = json.dumps({
            "cniVersion": "1.0.0",
            "name": name,
            "type": plugin,
            "master": master,
            "mode": mode,
            "ipam": {"type": "host-local", "dataDir": data_dir, "ranges": ranges, "routes": routes},
        }).encode()

    def argv(self):
        return [self.plugin]

    def env(self, cmd, id_, netns):
        return {"CNI_COMMAND": cmd, "CNI_CONTAINERID": id_, "CNI_NETNS": netns,
                "CNI_IFNAME": "eth0", "CNI_PATH": self.cni_path, "PATH": SYS_PATH}

    def add(self, ctr, id_):
        return self.timer.timed(self.argv(), self.conf, self.env("ADD", id_, ctr.path))

    def delete(self, netns_path, id_):
        return self.timer.timed(self.argv(), self.conf, self.env("DEL", id_, netns_path))


class CniOurs(Cni):
    """ipvlan-hook run by a CNI runtime: the plugin itself (`{"type": "ipvlan-hook"}`), or the
    IPAM of the CNI macvlan plugin, which finds it under its type name in `plugin_dir`, a
    CNI_PATH entry of its own ahead of the CNI project's plugins."""

    def __init__(self, timer, name, plugin_dir, config, state, network, ipam):
        self.timer = timer
        self.name = name
        self.cni_path = f"{plugin_dir}:{CNI_DIR}"
        ours = {"type": "ipvlan-hook", "network": network, "config_dir": config, "state_dir": state}
        if ipam:
            conf = {"type": "macvlan", "master": "p0", "mode": "bridge", "ipam": ours}
            self.plugin = f"{CNI_DIR}/macvlan"
        else:
            conf = ours
            self.plugin = os.path.join(plugin_dir, "ipvlan-hook")
        self.conf = json.dumps({"cniVersion": "1.0.0", "name": name, **conf}).encode()


class Netavark:
    def __init__(self, timer, name, config_dir, v4, v6=None):
        self.timer = timer
        self.name, self.config_dir = name, config_dir
        self.v4, self.v6 = ipaddress.ip_network(v4), ipaddress.ip_network(v6) if v6 else None
        self.n = 0

    def options(self, id_, k):
        ips = [str(self.v4[2 + k])]
        subnets = [{"subnet": str(self.v4), "gateway": str(self.v4[1])}]
        if self.v6:
            ips.append(str(self.v6[2 + k]))
            subnets.append({"subnet": str(self.v6), "gateway": str(self.v6[1])})
        return json.dumps({
            "container_id": id_,
            "container_name": "c" + id_[:12],
            "networks": {self.name: {"static_ips": ips, "interface_name": "eth0"}},
            "network_info": {self.name: {
                "name": self.name,
                "id": "f" * 64,
                "driver": "macvlan",
                "network_interface": "p0",
                "subnets": subnets,
                "ipv6_enabled": bool(self.v6),
                "internal": False,
                "dns_enabled": False,
                "ipam_options": {"driver": "host-local"},
            }},
        }).encode()

    def next_options(self, id_):
        self.n = (self.n + 1) % 60000
        return self.options(id_, self.n)

    def argv(self, cmd, path):
        return [NETAVARK, "--config", self.config_dir, cmd, path]

    def env(self):
        return {"PATH": SYS_PATH}

    def setup(self, ctr, opts):
        return self.timer.timed(self.argv("setup", ctr.path), opts, self.env())

    def teardown(self, ctr, opts):
        return self.timer.timed(self.argv("teardown", ctr.path), opts, self.env())


class IpBatch:
    """The floor: one `ip -batch` process, started inside the container's netns, that creates the
    macvlan on the host's p0 (by ifindex, through the host netns' nsid), adds the addresses,
    brings the link up and adds the default routes."""

    def __init__(self, timer, host, v4, v6=None):
        self.timer = timer
        self.host_name, self.host_fd, self.parent = host.name, host.host_fd, host.parent_index
        self.v4, self.v6 = ipaddress.ip_network(v4), ipaddress.ip_network(v6) if v6 else None
        self.n = 0

    def script(self, k=None):
        if k is None:
            self.n = (self.n + 1) % 60000
            k = self.n
        lines = [
            f"netns set {self.host_name} 1",
            f"link add link if{self.parent} link-netnsid 1 name eth0 type macvlan mode bridge",
            f"addr add {self.v4[2 + k]}/{self.v4.prefixlen} dev eth0",
        ]
        if self.v6:
            lines.append(f"addr add {self.v6[2 + k]}/{self.v6.prefixlen} dev eth0 nodad")
        lines.append("link set eth0 up")
        lines.append(f"route add default via {self.v4[1]} dev eth0")
        if self.v6:
            lines.append(f"route add default via {self.v6[1]} dev eth0")
        return ("\n".join(lines) + "\n").encode()

    def env(self):
        return {"PATH": SYS_PATH}

    def _in(self, ctr, argv, data):
        setns(ctr.fd, CLONE_NEWNET)
        try:
            return self.timer.timed(argv, data, self.env())
        finally:
            setns(self.host_fd, CLONE_NEWNET)

    def setup(self, ctr, script):
        return self._in(ctr, ["ip", "-batch", "-"], script)

    def teardown(self, ctr):
        return self._in(ctr, ["ip", "link", "del", "dev", "eth0"], None)


class IpTight:
    """The tight floor (issue 17): exactly the requests a setup needs, and nothing the harness
    does for `ip`. `ip -n CONTAINER -batch -` is started in the host netns like ours; the
    container's netns is named and knows the host's netns id before the timing starts; the
    script is `link add ... link-netnsid N`, `addr add`, `link set up`, `route add default`."""

    NSID = 1

    def __init__(self, timer, host, v4, kind="macvlan mode bridge", parent=None):
        self.timer = timer
        self.host_name = host.name
        self.parent = parent or host.parent_index
        self.kind = kind
        self.v4 = ipaddress.ip_network(v4)
        self.n = 0

    def prepare(self, ctr):
        """Untimed: name the container's netns and give it the host netns' id."""
        ctr.name = f"bench-ctr-{os.getpid()}-{ctr.pid}"
        sh("ip", "netns", "attach", ctr.name, str(ctr.pid))
        sh("ip", "-n", ctr.name, "netns", "set", self.host_name, str(self.NSID))

    def release(self, ctr):
        sh("ip", "netns", "del", ctr.name)

    def script(self, k=None, l3=False):
        if k is None:
            self.n = (self.n + 1) % 60000
            k = self.n
        route = "route add default dev eth0" if l3 else f"route add default via {self.v4[1]} dev eth0"
        return (f"link add link if{self.parent} link-netnsid {self.NSID} name eth0 type {self.kind}\n"
                f"addr add {self.v4[2 + k]}/{self.v4.prefixlen} dev eth0\n"
                "link set eth0 up\n"
                f"{route}\n").encode()

    def argv(self, ctr):
        return ["ip", "-n", ctr.name, "-batch", "-"]

    def env(self):
        return {"PATH": SYS_PATH}

    def setup(self, ctr, script):
        return self.timer.timed(self.argv(ctr), script, self.env())


def make_vm_tools(ctx):
    """bench.py --vm: ipvlan L2 on p0 and L3 on q0 (a parent's slaves share one mode), for ours,
    the CNI ipvlan plugin with host-local, and the tight floor; into ctx.vm, keyed by mode."""
    base, timer, host = ctx.host.base, ctx.timer, ctx.host
    ctx.etc = os.path.join(base, "etc")
    ctx.state = os.path.join(base, "state")
    bundle_cfg = json.load(open(os.path.join(HERE, "oci-config.json")))
    hook = [ctx.binary, "--config-dir", ctx.etc, "--state-dir", ctx.state]
    cni_dir = os.path.join(base, "cni")
    ctx.vm = {}
    for k, (mode, parent) in enumerate([("l2", "p0"), ("l3", "q0")]):
        net = f"vm{mode}"
        sh(*hook, "network", "create", net, "--driver", "ipvlan", "--mode", mode, "--parent", parent,
           "--subnet", f"10.{70 + k}.0.0/16")
        ctx.vm[mode] = {
            "ours": Ours(timer, ctx.binary, ctx.etc, ctx.state, net, bundle_cfg),
            "cni": Cni(timer, f"cni{mode}", cni_dir, f"10.{80 + k}.0.0/16", plugin="ipvlan", master=parent,
                       mode=mode),
            "tight": IpTight(timer, host, f"10.{90 + k}.0.0/16", kind=f"ipvlan mode {mode}",
                             parent=host.parents[parent]),
        }


def make_tools(ctx):
    """Create our networks and every contender on the started host, into the context."""
    base, timer = ctx.host.base, ctx.timer
    ctx.etc = os.path.join(base, "etc")
    ctx.state = os.path.join(base, "state")
    ctx.state_tmpfs = os.path.join(ctx.host.tmpfs, "state")
    bundle_cfg = json.load(open(os.path.join(HERE, "oci-config.json")))
    hook = [ctx.binary, "--config-dir", ctx.etc, "--state-dir", ctx.state]
    sh(*hook, "network", "create", NET4, "--driver", "macvlan", "--parent", "p0", "--subnet", "10.10.0.0/16")
    sh(*hook, "network", "create", NET4_SECOND, "--driver", "macvlan", "--parent", "p0", "--subnet", "10.16.0.0/16")
    sh(*hook, "network", "create", NET4_TMPFS, "--driver", "macvlan", "--parent", "p0", "--subnet", "10.12.0.0/16")
    sh(*hook, "network", "create", NET_DUAL, "--driver", "macvlan", "--parent", "p0",
       "--subnet", "10.11.0.0/16", "--subnet", "fd11::/64")
    sh(*hook, "network", "create", NET_DUAL_TMPFS, "--driver", "macvlan", "--parent", "p0",
       "--subnet", "10.13.0.0/16", "--subnet", "fd13::/64")
    sh(*hook, "network", "create", NET_SCALE, "--driver", "macvlan", "--parent", "p0", "--subnet", SCALE_SUBNET)
    sh(*hook, "network", "create", NET_CNI, "--driver", "macvlan", "--parent", "p0", "--subnet", "10.14.0.0/16")
    sh(*hook, "network", "create", NET_CNI_IPAM, "--driver", "macvlan", "--parent", "p0", "--subnet", "10.15.0.0/16")
    ctx.ours = Ours(timer, ctx.binary, ctx.etc, ctx.state, NET4, bundle_cfg)
    ctx.ours_t = Ours(timer, ctx.binary, ctx.etc, ctx.state_tmpfs, NET4_TMPFS, bundle_cfg)
    if ctx.args.compare_bin and "main" not in ctx.skip:
        ctx.ours_b = Ours(timer, os.path.abspath(ctx.args.compare_bin), ctx.etc, ctx.state, NET4, bundle_cfg)
    cni_dir = os.path.join(base, "cni")
    ctx.cni = Cni(timer, "cni4", cni_dir, "10.20.0.0/16")
    ctx.cnid = Cni(timer, "cnid", cni_dir, "10.21.0.0/16", "fd21::/64")
    ctx.cnis = Cni(timer, "cniscale", cni_dir, CNI_SCALE_SUBNET)
    plugin_dir = os.path.join(base, "cni-bin")
    os.makedirs(plugin_dir)
    os.symlink(ctx.binary, os.path.join(plugin_dir, "ipvlan-hook"))
    ctx.cni_ours = CniOurs(timer, "cniours", plugin_dir, ctx.etc, ctx.state, NET_CNI, ipam=False)
    ctx.cni_ipam = CniOurs(timer, "cniipam", plugin_dir, ctx.etc, ctx.state, NET_CNI_IPAM, ipam=True)
    nv_dir = os.path.join(base, "netavark")
    os.makedirs(nv_dir)
    ctx.nv = Netavark(timer, "nv4", nv_dir, "10.30.0.0/16")
    ctx.nvd = Netavark(timer, "nvd", nv_dir, "10.31.0.0/16", "fd31::/64")
    ctx.ipb = IpBatch(timer, ctx.host, "10.40.0.0/16")
    ctx.ipbd = IpBatch(timer, ctx.host, "10.41.0.0/16", "fd41::/64")
    ctx.ipt = IpTight(timer, ctx.host, "10.42.0.0/16")


# --------------------------------------------------------------------------------------------
# Pre-populated leases, in each store's disk format


def template_lease(ours, net, host):
    """Lease one address with the real binary and return its files, as a format template."""
    ctr = host.holder()
    id_ = "template-" + cid()[:16]
    must(ours.setup(ctr, id_, net), "template setup")
    d = os.path.join(ours.state, "networks", net)
    names = [n for n in os.listdir(os.path.join(d, "leases")) if not n.startswith(".")]
    assert len(names) == 1, names
    lease = json.load(open(os.path.join(d, "leases", names[0])))
    index = json.load(open(os.path.join(d, "containers", id_)))
    ctr.kill()
    must(ours.teardown(id_, net), "template teardown")
    return lease, index


def populate_ours(ours, net, subnet, count, lease_tpl, index_tpl):
    """Write `count` leases (10.x.0.2 upward, one container each) in exactly the store's format:
    leases/ADDR (the JSON lease), containers/ID (the index), cursor-SUBNET (last address)."""
    d = os.path.join(ours.state, "networks", net)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "leases"))
    os.makedirs(os.path.join(d, "containers"))
    net_ = ipaddress.ip_network(subnet)
    last = None
    for i in range(count):
        addr = str(net_[2 + i])
        c = f"fill{i:06d}"
        lease = dict(lease_tpl, container=c, address=addr, network=net)
        with open(os.path.join(d, "leases", addr), "w") as f:
            f.write(json.dumps(lease, separators=(",", ":")))
        with open(os.path.join(d, "containers", c), "w") as f:
            f.write(json.dumps(dict(index_tpl, addresses=[addr]), separators=(",", ":")))
        last = addr
    cursor = os.path.join(d, "cursor-" + str(net_).replace("/", "_"))
    if last:
        with open(cursor, "w") as f:
            f.write(last)
    return cursor


def populate_cni(cni, subnet, count):
    """host-local's disk format: DATADIR/NET/ADDR = "ID\\r\\nIFNAME", last_reserved_ip.0."""
    d = os.path.join(cni.data_dir, cni.name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    net_ = ipaddress.ip_network(subnet)
    last = None
    for i in range(count):
        addr = str(net_[2 + i])
        with open(os.path.join(d, addr), "w") as f:
            f.write(f"fill{i:06d}\r\neth0")
        last = addr
    if last:
        with open(os.path.join(d, "last_reserved_ip.0"), "w") as f:
            f.write(last)
