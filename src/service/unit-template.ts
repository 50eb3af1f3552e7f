/**
 * The systemd unit, as shipped in service-units/edge-agent.service, embedded so the single
 * executable carries it for `install-service`. A test keeps the two identical.
 */
export const SYSTEMD_UNIT_TEMPLATE = `[Unit]
Description=edge-agent: device agent (NATS)
Documentation=file:///usr/share/doc/edge-agent/README.md
Wants=network-online.target
After=network-online.target
# Never give up: once a start limit is hit systemd leaves the unit failed until someone resets it,
# and an agent that stays down cannot be reached to fix it. A self-update that rolls back takes
# five starts in a row (restart, three trial starts, rollback). Restarts stay 5 s apart.
StartLimitIntervalSec=0

[Service]
# simple, not notify: the agent does not speak sd_notify, and it is "up" as soon as it runs: it
# works offline (buffering) and connects in the background.
Type=simple
User=edge-agent
Group=edge-agent
ExecStart=/usr/bin/edge-agent run
Environment=EDGE_AGENT_CONFIG_DIR=/etc/edge-agent
Environment=EDGE_AGENT_DATA_DIR=/var/lib/edge-agent
# A self-update ends the process with exit code 75 and relies on Restart= to start the new version.
Environment=EDGE_AGENT_SUPERVISED=1
# glibc makes a malloc arena per thread; two are plenty for the agent and keep ~4 MB off its RSS.
Environment=MALLOC_ARENA_MAX=2
EnvironmentFile=-/etc/default/edge-agent
# Restart always, 5 s apart; exit code 75 (a self-update) included. Exit code 78 is an agent that
# was uninstalled remotely and could not remove its own service (it runs unprivileged): never again.
Restart=always
RestartSec=5s
RestartPreventExitStatus=78
# SIGTERM drains the link and closes the outbox within 5 s; give it a little more.
TimeoutStopSec=15s
KillMode=mixed

# Hardening. Tools unpack and self-updates stage under /var/lib/edge-agent, so both work as is.
# A tool whose installer registers a system service needs more: root (User=root), writes outside
# (ReadWritePaths=/etc/systemd/system ...) and NoNewPrivileges=no; put that in a drop-in
# (systemctl edit edge-agent) on the machines that run such tools, not here.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
CapabilityBoundingSet=
AmbientCapabilities=
# The data dir holds the outbox; the config dir the last good remote configuration.
ReadWritePaths=/var/lib/edge-agent /etc/edge-agent
StateDirectory=edge-agent
StateDirectoryMode=0750
UMask=0027

[Install]
WantedBy=multi-user.target
`;
