# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ipvlan_hook_global_optspecs
    string join \n config-dir= state-dir= h/help V/version
end

function __fish_ipvlan_hook_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ipvlan_hook_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ipvlan_hook_using_subcommand
    set -l cmd (__fish_ipvlan_hook_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -s V -l version -d 'Print version'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -f -a "hook" -d 'OCI hook: reads the container state on stdin'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -f -a "network" -d 'Define, remove and list networks'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -f -a "lease" -d 'Show leases'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -f -a "gc" -d 'Release the leases of containers that no longer exist; make missing host-access links and container routes again'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -f -a "run" -d 'Run a command in a new network namespace attached to a network'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -f -a "doctor" -d 'Check that this host is ready: kernel support, networks, directories, hooks.d files, CNI'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand hook" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand hook" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand hook" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -f -a "create" -d 'Define a network (and create its VLAN or dummy parent link when needed)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -f -a "rm" -d 'Remove networks (and the parent links they created)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -f -a "ls" -d 'List networks'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -f -a "inspect" -d 'Show networks as JSON'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -f -a "connect" -d 'Attach a network namespace no OCI runtime manages (ip netns, LXC, systemd-nspawn)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -f -a "disconnect" -d 'Detach what `network connect` attached; already gone counts as done'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and not __fish_seen_subcommand_from create rm ls inspect connect disconnect help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -s d -l driver -r -f -a "ipvlan\t''
macvlan\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l parent -d 'Parent link; a missing IFACE.VID is created as an 802.1q sub-interface; none = dummy' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l mode -d 'ipvlan mode [default: l2]' -r -f -a "l2\t''
l3\t''
l3s\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l flag -d 'ipvlan flag (for macvlan: the macvlan mode) [default: bridge]' -r -f -a "bridge\t''
private\t''
vepa\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -s o -l opt -d 'Docker\'s driver options: parent, ipvlan_mode, ipvlan_flag, macvlan_mode, com.docker.network.driver.mtu (repeatable)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l subnet -d 'Subnet in CIDR form; repeat for several (IPv4 and/or IPv6) [default: a free /16 of 172.17.0.0-172.31.255.255]' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l gateway -d 'Gateway of the subnet it lies in (L2; default: the first address)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l ip-range -d 'Range for dynamic addresses within the subnet it lies in' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l aux-address -d 'An address of a subnet never to hand out (repeatable)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l mtu -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l ipam -d 'Where leases live: this host\'s lease files, or etcd, shared by the hosts of a layer 2 segment (needs CONFIG_DIR/etcd.json; define the network identically on every host)' -r -f -a "files\t''
etcd\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l host-access -d 'Let this host reach the containers: a link of the network\'s driver, mode and flag on the parent (ha-NAME), holding ADDR and ADDR6 (default: the highest free address of each family\'s subnet outside --ip-range), with routes to the containers through it' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l announce -d 'Put each container address as a /32 or /128 route into routing TABLE, for a BGP speaker to announce (default table 251; see ipvlan-hook(8), ROUTE ANNOUNCEMENT)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l ipv6 -d 'Accepted for Docker\'s sake: IPv6 subnets work with or without it'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -l internal -d 'No default route in containers'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from rm" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from rm" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from rm" -s f -l force -d 'Remove even if containers still hold leases on it'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from rm" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from ls" -l format -r -f -a "table\t''
json\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from ls" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from ls" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from inspect" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from inspect" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from inspect" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l pid -d 'The network namespace of this process (LXC, systemd-nspawn, `unshare -n`)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l netns -d 'A network namespace file: /run/netns/NAME, or just NAME for one made by `ip netns add`' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l id -d 'Who holds the leases and links, as a container id does (shown by `lease ls`)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l ifname -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l ip -d 'Static IPv4 address' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l ip6 -d 'Static IPv6 address' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l mac -d 'MAC address (macvlan networks only)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l mtu -d 'MTU of the interface (default: the network\'s, else the parent\'s)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from connect" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from disconnect" -l id -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from disconnect" -l ifname -d 'Only this interface (default: every interface of the id on the network)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from disconnect" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from disconnect" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from disconnect" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "create" -d 'Define a network (and create its VLAN or dummy parent link when needed)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "rm" -d 'Remove networks (and the parent links they created)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List networks'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "inspect" -d 'Show networks as JSON'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "connect" -d 'Attach a network namespace no OCI runtime manages (ip netns, LXC, systemd-nspawn)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "disconnect" -d 'Detach what `network connect` attached; already gone counts as done'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand network; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and not __fish_seen_subcommand_from ls drain help" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and not __fish_seen_subcommand_from ls drain help" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and not __fish_seen_subcommand_from ls drain help" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and not __fish_seen_subcommand_from ls drain help" -f -a "ls" -d 'List leases, of one network or all (etcd networks: of every host): a row per attachment in the table, an object per address in JSON'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and not __fish_seen_subcommand_from ls drain help" -f -a "drain" -d 'Release every lease a host holds in etcd: for a host that is gone for good'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and not __fish_seen_subcommand_from ls drain help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from ls" -l format -r -f -a "table\t''
json\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from ls" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from ls" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from ls" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from drain" -l host -d 'The host\'s id (etcd.json\'s "host"; the HOST column of \'lease ls\')' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from drain" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from drain" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from drain" -l dry-run -d 'Only list what would be released'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from drain" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from help" -f -a "ls" -d 'List leases, of one network or all (etcd networks: of every host): a row per attachment in the table, an object per address in JSON'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from help" -f -a "drain" -d 'Release every lease a host holds in etcd: for a host that is gone for good'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand lease; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand gc" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand gc" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand gc" -l dry-run -d 'Only list what would be released (and repair nothing)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand gc" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l network -l net -d 'A network defined with `network create`, with this interface\'s settings (podman\'s syntax); repeat for several interfaces, named eth0, eth1, ... unless given' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l parent -d 'Parent link of a network given by flags; none = an isolated network on a dummy link' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l subnet -d 'Subnet of a network given by flags (repeat for IPv4 and IPv6)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l gateway -d 'Gateway of a network given by flags (L2; default: first address of each subnet)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l driver -r -f -a "ipvlan\t''
macvlan\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l mode -r -f -a "l2\t''
l3\t''
l3s\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l flag -r -f -a "bridge\t''
private\t''
vepa\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l ip -d 'Static IPv4 address (with one network)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l ip6 -d 'Static IPv6 address (with one network)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l ifname -d 'Interface name inside the namespace (with one network) [default: eth0]' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l mtu -d 'MTU of the interface (with one network; default: the parent\'s)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l name -d 'Lease owner id, shown by `lease ls` (default: run-PID)' -r
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -l internal -d 'No default route'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand run" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand doctor" -l hooks-dir -d 'hooks.d directory to check, instead of where podman and CRI-O look (repeat for several)' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand doctor" -l cni-plugin-dir -d 'Directory where CNI runtimes look for plugins, instead of the usual ones (repeat for several)' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand doctor" -l cni-conf-dir -d 'Directory of CNI network configurations to check, instead of /etc/cni/net.d (repeat for several)' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand doctor" -l format -r -f -a "table\t''
json\t''"
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand doctor" -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand doctor" -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand doctor" -s h -l help -d 'Print help'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and not __fish_seen_subcommand_from hook network lease gc run doctor help" -f -a "hook" -d 'OCI hook: reads the container state on stdin'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and not __fish_seen_subcommand_from hook network lease gc run doctor help" -f -a "network" -d 'Define, remove and list networks'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and not __fish_seen_subcommand_from hook network lease gc run doctor help" -f -a "lease" -d 'Show leases'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and not __fish_seen_subcommand_from hook network lease gc run doctor help" -f -a "gc" -d 'Release the leases of containers that no longer exist; make missing host-access links and container routes again'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and not __fish_seen_subcommand_from hook network lease gc run doctor help" -f -a "run" -d 'Run a command in a new network namespace attached to a network'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and not __fish_seen_subcommand_from hook network lease gc run doctor help" -f -a "doctor" -d 'Check that this host is ready: kernel support, networks, directories, hooks.d files, CNI'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and not __fish_seen_subcommand_from hook network lease gc run doctor help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "create" -d 'Define a network (and create its VLAN or dummy parent link when needed)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "rm" -d 'Remove networks (and the parent links they created)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "ls" -d 'List networks'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "inspect" -d 'Show networks as JSON'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "connect" -d 'Attach a network namespace no OCI runtime manages (ip netns, LXC, systemd-nspawn)'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and __fish_seen_subcommand_from network" -f -a "disconnect" -d 'Detach what `network connect` attached; already gone counts as done'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and __fish_seen_subcommand_from lease" -f -a "ls" -d 'List leases, of one network or all (etcd networks: of every host): a row per attachment in the table, an object per address in JSON'
complete -c ipvlan-hook -n "__fish_ipvlan_hook_using_subcommand help; and __fish_seen_subcommand_from lease" -f -a "drain" -d 'Release every lease a host holds in etcd: for a host that is gone for good'
