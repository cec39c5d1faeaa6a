"""The local lab: a digital twin of a site on one machine (see docs: DESIGN "The local lab").

Today: SSH nodes (`lab.nodes.NodeLab`, CLI `sovereign lab nodes up|down|status`).

Where things live
    ${SOVEREIGN_CACHE:-~/.cache/sovereign}/lab/rootfs-bookworm   shared Debian 12 base (lab.rootfs)
    ${SOVEREIGN_STATE:-~/.local/state/sovereign}/lab/<name>/       one lab, removed by `down`:
        lab.json  inventory.ini  ssh_config  known_hosts  id_ed25519[.pub]  lxc/<node>/
    /run/sovereign/lab/                                            host-wide claims and locks
    /run/sovereign/ssh/<hash>/                                     the lab's SSH masters (lab.sockets)

Per lab (name: $SOVEREIGN_LAB or --name, default "default"): subnet 10.250.<N>.0/24 with N
derived from the name (next free on a clash), bridge sovbr<N>, iptables chain SOVLAB-<N>
(filter + nat), nodes <name>-node<i> at 10.250.<N>.<10+i>.
"""
