package check

// rules is the catalog. Kubernetes rules follow the Pod Security
// Standards (baseline and restricted) and the NSA/CISA hardening guide as
// kubescape checks it; Dockerfile rules are hadolint's essentials; image
// rules are Dockle's and CIS Docker 4.x's.
var rules = map[string]Rule{}

func rule(id, severity, why, fix string, sets ...string) {
	rules[id] = Rule{ID: id, Severity: severity, Why: why, Fix: fix, Sets: sets}
}

func init() {
	// Pod Security Standards: baseline.
	rule("pss-privileged", Critical, "a privileged container has every capability and the host's devices", "remove securityContext.privileged or set it to false", "baseline")
	rule("pss-host-namespaces", High, "sharing the host's network, PID or IPC namespace exposes the node", "remove hostNetwork, hostPID and hostIPC", "baseline")
	rule("pss-host-path", High, "a hostPath volume reads or writes the node's filesystem", "use a persistentVolumeClaim, configMap, secret or emptyDir", "baseline")
	rule("pss-host-ports", Medium, "a hostPort binds the node's port and bypasses network policy", "remove hostPort; expose the port with a Service", "baseline")
	rule("pss-capabilities-baseline", High, "capabilities beyond the default set give root-like powers", "add only AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID or SYS_CHROOT", "baseline")
	rule("pss-apparmor", High, "an unconfined AppArmor profile removes the runtime's confinement", "use the RuntimeDefault or a Localhost AppArmor profile", "baseline")
	rule("pss-selinux", High, "a custom SELinux user, role or type escapes the container's label", "set only seLinuxOptions.level, or type container_t/container_init_t/container_kvm_t", "baseline")
	rule("pss-proc-mount", High, "an unmasked /proc exposes the host's kernel interfaces", "remove procMount or set it to Default", "baseline")
	rule("pss-seccomp-baseline", High, "an Unconfined seccomp profile allows every system call", "use RuntimeDefault or a Localhost seccomp profile", "baseline")
	rule("pss-sysctls", High, "unsafe sysctls change the node's kernel for every pod", "use only the safe sysctls (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, net.ipv4.ip_unprivileged_port_start, net.ipv4.ip_local_reserved_ports, net.ipv4.tcp_keepalive_*, net.ipv4.tcp_fin_timeout)", "baseline")
	// Pod Security Standards: restricted.
	rule("pss-volume-types", Medium, "only ephemeral and projected volume types are allowed under restricted", "use configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected or secret volumes", "restricted")
	rule("pss-privilege-escalation", High, "a process can gain more privileges than its parent (setuid binaries)", "set securityContext.allowPrivilegeEscalation: false", "restricted")
	rule("pss-run-as-non-root", High, "a container may run as root", "set securityContext.runAsNonRoot: true (pod or container)", "restricted")
	rule("pss-run-as-user", High, "runAsUser 0 runs the container as root", "set runAsUser to a non-zero UID", "restricted")
	rule("pss-seccomp", Medium, "without a seccomp profile every system call is allowed", "set securityContext.seccompProfile.type: RuntimeDefault", "restricted")
	rule("pss-capabilities-restricted", Medium, "containers must drop every capability and add back at most NET_BIND_SERVICE", "set securityContext.capabilities.drop: [ALL]", "restricted")
	// Hardening (NSA/CISA, kubescape).
	rule("k8s-read-only-root", Medium, "a writable root filesystem lets an attacker change the container's binaries", "set securityContext.readOnlyRootFilesystem: true and mount emptyDir where writes are needed", "hardening")
	rule("k8s-resource-limits", Medium, "without CPU and memory limits one container can starve the node", "set resources.limits.cpu and resources.limits.memory", "hardening")
	rule("k8s-image-digest", Medium, "a tag can be moved: the image that runs is not the one that was checked", "reference the image by digest (image@sha256:...)", "hardening")
	rule("k8s-image-latest", High, "latest (or no tag) changes under the workload without a deployment", "pin a version tag and a digest", "hardening")
	rule("k8s-image-registry", High, "an image from a registry outside the allowed list has not been through the organisation's checks", "pull from an allowed registry (--registry)", "hardening")
	rule("k8s-probes", Low, "without liveness and readiness probes a broken container keeps receiving traffic", "add livenessProbe and readinessProbe", "hardening")
	// Schema.
	rule("schema", High, "the object does not match its Kubernetes API schema: the API server would refuse it", "fix the field named in the message", "schema")
	rule("schema-unknown-kind", Medium, "no schema is known for this apiVersion and kind in the chosen Kubernetes version", "use an API version the cluster serves, or give the CRD (--crd)", "schema")
	rule("schema-parse", High, "the document is not valid YAML or JSON", "fix the syntax at the line given", "schema")
	// Dockerfiles.
	rule("df-base-pinned", Medium, "a base named by tag can change between builds", "pin the base by digest: FROM image:tag@sha256:...", "dockerfile")
	rule("df-base-latest", High, "latest (or no tag) makes the build depend on whatever was pushed last", "name a version tag", "dockerfile")
	rule("df-user-root", High, "the image runs as root unless its last USER is another user", "end the final stage with USER <non-root user>", "dockerfile")
	rule("df-add", Low, "ADD fetches URLs and unpacks archives implicitly", "use COPY for local files; curl and verify for downloads", "dockerfile")
	rule("df-apt-recommends", Low, "recommended packages grow the image and its attack surface", "apt-get install --no-install-recommends", "dockerfile")
	rule("df-apt-lists", Low, "apt lists left in the image waste space and date it", "rm -rf /var/lib/apt/lists/* in the same RUN", "dockerfile")
	rule("df-apt-pin", Low, "unpinned packages change between builds", "apt-get install package=version (when the team pins)", "dockerfile")
	rule("df-apk-cache", Low, "the apk cache left in the image wastes space", "apk add --no-cache", "dockerfile")
	rule("df-apk-pin", Low, "unpinned packages change between builds", "apk add package=version (when the team pins)", "dockerfile")
	rule("df-secret", Critical, "a secret in ENV or ARG is stored in the image's config or history", "pass secrets with RUN --mount=type=secret", "dockerfile")
	rule("df-healthcheck", Low, "without HEALTHCHECK the runtime cannot tell a hung container", "add HEALTHCHECK CMD ...", "dockerfile")
	// Images.
	rule("img-root-user", High, "the image's configured user is root", "set a non-root USER in the image", "image", "restricted")
	rule("img-secret-env", Critical, "the image's environment holds a secret anyone who pulls it can read", "remove it; inject secrets at run time", "image", "baseline")
	rule("img-secret-label", Critical, "a label holds a secret anyone who pulls the image can read", "remove the label", "image", "baseline")
	rule("img-secret-history", High, "the image's build history records a secret", "rebuild with RUN --mount=type=secret; the history cannot be edited", "image", "baseline")
	rule("img-setuid", Medium, "setuid and setgid files let a user gain their owner's privileges", "remove the bit (chmod u-s,g-s) unless the file needs it", "image", "restricted")
	rule("img-package-cache", Low, "package manager caches left in the image waste space", "clean the cache in the layer that filled it", "image", "hardening")
	rule("img-labels", Low, "the catalog's convention needs the source, version and base labels to trace the image", "set org.opencontainers.image.source, org.opencontainers.image.version and org.opencontainers.image.base.name", "image", "hardening")
}
