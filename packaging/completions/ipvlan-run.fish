complete -c ipvlan-run -l network -l net -d 'A network defined with `network create`, with this interface\'s settings (podman\'s syntax); repeat for several interfaces, named eth0, eth1, ... unless given' -r
complete -c ipvlan-run -l parent -d 'Parent link of a network given by flags; none = an isolated network on a dummy link' -r
complete -c ipvlan-run -l subnet -d 'Subnet of a network given by flags (repeat for IPv4 and IPv6)' -r
complete -c ipvlan-run -l gateway -d 'Gateway of a network given by flags (L2; default: first address of each subnet)' -r
complete -c ipvlan-run -l driver -r -f -a "ipvlan\t''
macvlan\t''"
complete -c ipvlan-run -l mode -r -f -a "l2\t''
l3\t''
l3s\t''"
complete -c ipvlan-run -l flag -r -f -a "bridge\t''
private\t''
vepa\t''"
complete -c ipvlan-run -l ip -d 'Static IPv4 address (with one network)' -r
complete -c ipvlan-run -l ip6 -d 'Static IPv6 address (with one network)' -r
complete -c ipvlan-run -l ifname -d 'Interface name inside the namespace (with one network) [default: eth0]' -r
complete -c ipvlan-run -l mtu -d 'MTU of the interface (with one network; default: the parent\'s)' -r
complete -c ipvlan-run -l name -d 'Lease owner id, shown by `lease ls` (default: run-PID)' -r
complete -c ipvlan-run -l config-dir -d 'Where network definitions and the policy live' -r -F
complete -c ipvlan-run -l state-dir -d 'Where leases and locks live' -r -F
complete -c ipvlan-run -l internal -d 'No default route'
complete -c ipvlan-run -s h -l help -d 'Print help'
