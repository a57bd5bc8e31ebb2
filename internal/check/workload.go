package check

import (
	"fmt"
	"strings"
)

// WorkloadOptions tune the hardening rules.
type WorkloadOptions struct {
	// Registries are the allowed registries (host or host/path
	// prefixes); empty allows any.
	Registries []string
}

// podSpecOf returns the pod spec of a workload, or nil for other kinds.
func podSpecOf(o Object) map[string]any {
	switch o.Kind {
	case "Pod":
		return mapAt(o.Body, "spec")
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController":
		return mapAt(o.Body, "spec", "template", "spec")
	case "CronJob":
		return mapAt(o.Body, "spec", "jobTemplate", "spec", "template", "spec")
	}
	return nil
}

// podMetaOf returns the pod template's metadata (for annotations).
func podMetaOf(o Object) map[string]any {
	switch o.Kind {
	case "Pod":
		return mapAt(o.Body, "metadata")
	case "CronJob":
		return mapAt(o.Body, "spec", "jobTemplate", "spec", "template", "metadata")
	}
	return mapAt(o.Body, "spec", "template", "metadata")
}

func mapAt(m map[string]any, path ...string) map[string]any {
	cur := m
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func listAt(m map[string]any, key string) []map[string]any {
	items, _ := m[key].([]any)
	var out []map[string]any
	for _, it := range items {
		if c, ok := it.(map[string]any); ok {
			out = append(out, c)
		}
	}
	return out
}

func boolAt(m map[string]any, path ...string) (bool, bool) {
	if len(path) == 0 || m == nil {
		return false, false
	}
	parent := m
	if len(path) > 1 {
		parent = mapAt(m, path[:len(path)-1]...)
	}
	v, ok := parent[path[len(path)-1]].(bool)
	return v, ok
}

func stringAt(m map[string]any, path ...string) string {
	if len(path) == 0 || m == nil {
		return ""
	}
	parent := m
	if len(path) > 1 {
		parent = mapAt(m, path[:len(path)-1]...)
	}
	s, _ := parent[path[len(path)-1]].(string)
	return s
}

func intAt(m map[string]any, path ...string) (int64, bool) {
	if len(path) == 0 || m == nil {
		return 0, false
	}
	parent := m
	if len(path) > 1 {
		parent = mapAt(m, path[:len(path)-1]...)
	}
	switch v := parent[path[len(path)-1]].(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	case uint64:
		return int64(v), true
	case float64:
		return int64(v), true
	}
	return 0, false
}

type container struct {
	kind string // containers, initContainers, ephemeralContainers
	spec map[string]any
}

func (c container) name() string {
	n, _ := c.spec["name"].(string)
	return n
}

func containersOf(pod map[string]any) []container {
	var out []container
	for _, k := range []string{"initContainers", "containers", "ephemeralContainers"} {
		for _, c := range listAt(pod, k) {
			out = append(out, container{kind: k, spec: c})
		}
	}
	return out
}

var baselineCaps = map[string]bool{"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true, "FSETID": true, "KILL": true,
	"MKNOD": true, "NET_BIND_SERVICE": true, "SETFCAP": true, "SETGID": true, "SETPCAP": true, "SETUID": true, "SYS_CHROOT": true}

var safeSysctls = []string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}

var restrictedVolumes = []string{"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}

// CheckWorkload runs the Pod Security Standards and hardening rules on
// the pod spec of a workload (of any kind that has one).
func CheckWorkload(o Object, opts WorkloadOptions) []Finding {
	pod := podSpecOf(o)
	if pod == nil {
		return nil
	}
	var out []Finding
	add := func(id, format string, args ...any) {
		out = append(out, finding(id, o.File, o.Line, o.String(), format, args...))
	}
	podSC := mapAt(pod, "securityContext")
	for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
		if v, _ := boolAt(pod, k); v {
			add("pss-host-namespaces", "%s: true", k)
		}
	}
	for _, v := range listAt(pod, "volumes") {
		name, _ := v["name"].(string)
		if _, ok := v["hostPath"]; ok {
			add("pss-host-path", "volume %s is a hostPath (%s)", name, stringAt(v, "hostPath", "path"))
		}
		allowed := false
		for _, t := range restrictedVolumes {
			if _, ok := v[t]; ok {
				allowed = true
			}
		}
		if !allowed {
			add("pss-volume-types", "volume %s has a type restricted does not allow", name)
		}
	}
	for _, s := range listAt(podSC, "sysctls") {
		n, _ := s["name"].(string)
		safe := false
		for _, x := range safeSysctls {
			safe = safe || n == x
		}
		if !safe {
			add("pss-sysctls", "sysctl %s is not a safe one", n)
		}
	}
	podNonRoot, _ := boolAt(podSC, "runAsNonRoot")
	podSeccomp := stringAt(podSC, "seccompProfile", "type")
	if podSeccomp == "Unconfined" {
		add("pss-seccomp-baseline", "the pod's seccomp profile is Unconfined")
	}
	if u, ok := intAt(podSC, "runAsUser"); ok && u == 0 {
		add("pss-run-as-user", "the pod runs as UID 0")
	}
	checkSELinux(mapAt(podSC, "seLinuxOptions"), "the pod", add)
	if stringAt(podSC, "appArmorProfile", "type") == "Unconfined" {
		add("pss-apparmor", "the pod's AppArmor profile is Unconfined")
	}
	meta := podMetaOf(o)
	for k, v := range mapAt(meta, "annotations") {
		if strings.HasPrefix(k, "container.apparmor.security.beta.kubernetes.io/") && v == "unconfined" {
			add("pss-apparmor", "annotation %s is unconfined", k)
		}
	}
	for _, c := range containersOf(pod) {
		checkContainer(c, podNonRoot, podSeccomp, opts, add)
	}
	return out
}

func checkSELinux(se map[string]any, who string, add func(string, string, ...any)) {
	if se == nil {
		return
	}
	if t := stringAt(se, "type"); t != "" && t != "container_t" && t != "container_init_t" && t != "container_kvm_t" && t != "container_engine_t" {
		add("pss-selinux", "%s sets SELinux type %s", who, t)
	}
	if stringAt(se, "user") != "" || stringAt(se, "role") != "" {
		add("pss-selinux", "%s sets an SELinux user or role", who)
	}
}

func checkContainer(c container, podNonRoot bool, podSeccomp string, opts WorkloadOptions, add func(string, string, ...any)) {
	who := fmt.Sprintf("%s %s", strings.TrimSuffix(c.kind, "s"), c.name())
	sc := mapAt(c.spec, "securityContext")
	if v, _ := boolAt(sc, "privileged"); v {
		add("pss-privileged", "%s is privileged", who)
	}
	for _, p := range listAt(c.spec, "ports") {
		if hp, ok := intAt(p, "hostPort"); ok && hp != 0 {
			add("pss-host-ports", "%s binds host port %d", who, hp)
		}
	}
	caps := mapAt(sc, "capabilities")
	added, _ := caps["add"].([]any)
	for _, a := range added {
		s, _ := a.(string)
		s = strings.TrimPrefix(strings.ToUpper(s), "CAP_")
		if !baselineCaps[s] {
			add("pss-capabilities-baseline", "%s adds capability %s", who, s)
		}
		if s != "NET_BIND_SERVICE" {
			add("pss-capabilities-restricted", "%s adds capability %s", who, s)
		}
	}
	dropsAll := false
	dropped, _ := caps["drop"].([]any)
	for _, d := range dropped {
		if s, _ := d.(string); strings.EqualFold(s, "ALL") {
			dropsAll = true
		}
	}
	if !dropsAll {
		add("pss-capabilities-restricted", "%s does not drop ALL capabilities", who)
	}
	if pm := stringAt(sc, "procMount"); pm != "" && pm != "Default" {
		add("pss-proc-mount", "%s sets procMount %s", who, pm)
	}
	checkSELinux(mapAt(sc, "seLinuxOptions"), who, add)
	if stringAt(sc, "appArmorProfile", "type") == "Unconfined" {
		add("pss-apparmor", "%s's AppArmor profile is Unconfined", who)
	}
	seccomp := stringAt(sc, "seccompProfile", "type")
	if seccomp == "Unconfined" {
		add("pss-seccomp-baseline", "%s's seccomp profile is Unconfined", who)
	}
	if seccomp == "" {
		seccomp = podSeccomp
	}
	if seccomp != "RuntimeDefault" && seccomp != "Localhost" {
		add("pss-seccomp", "%s has no RuntimeDefault or Localhost seccomp profile", who)
	}
	if v, ok := boolAt(sc, "allowPrivilegeEscalation"); !ok || v {
		add("pss-privilege-escalation", "%s does not set allowPrivilegeEscalation: false", who)
	}
	nonRoot, set := boolAt(sc, "runAsNonRoot")
	if !(nonRoot || (!set && podNonRoot)) {
		add("pss-run-as-non-root", "%s may run as root (runAsNonRoot is not true)", who)
	}
	if u, ok := intAt(sc, "runAsUser"); ok && u == 0 {
		add("pss-run-as-user", "%s runs as UID 0", who)
	}
	if c.kind == "ephemeralContainers" {
		return // debugging containers: no resources, probes or image policy
	}
	if v, _ := boolAt(sc, "readOnlyRootFilesystem"); !v {
		add("k8s-read-only-root", "%s has a writable root filesystem", who)
	}
	limits := mapAt(c.spec, "resources", "limits")
	if limits["cpu"] == nil || limits["memory"] == nil {
		add("k8s-resource-limits", "%s has no CPU or memory limit", who)
	}
	checkImageRef(stringAt(c.spec, "image"), who, opts, add)
	if c.kind == "containers" {
		if c.spec["livenessProbe"] == nil || c.spec["readinessProbe"] == nil {
			add("k8s-probes", "%s lacks a liveness or readiness probe", who)
		}
	}
}

// checkImageRef applies the image reference rules.
func checkImageRef(image, who string, opts WorkloadOptions, add func(string, string, ...any)) {
	if image == "" {
		return
	}
	ref, digest, _ := strings.Cut(image, "@")
	if digest == "" {
		add("k8s-image-digest", "%s's image %s is not pinned by digest", who, image)
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	_, tag, hasTag := strings.Cut(last, ":")
	if (!hasTag && digest == "") || tag == "latest" {
		add("k8s-image-latest", "%s's image %s uses latest", who, image)
	}
	if len(opts.Registries) > 0 && !allowedRegistry(ref, opts.Registries) {
		add("k8s-image-registry", "%s's image %s is not from an allowed registry (%s)", who, image, strings.Join(opts.Registries, ", "))
	}
}

// allowedRegistry reports whether ref starts with one of the allowed
// prefixes, on a path boundary.
func allowedRegistry(ref string, allowed []string) bool {
	for _, a := range allowed {
		a = strings.TrimSuffix(a, "/")
		if ref == a || strings.HasPrefix(ref, a+"/") {
			return true
		}
	}
	return false
}
