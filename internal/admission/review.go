package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Limits on what a review may hold.
const (
	// MaxReviewBytes bounds an AdmissionReview (the API server's own
	// request limit is 3 MiB; an update carries two objects).
	MaxReviewBytes = 8 << 20
	// MaxContainers bounds the containers of one pod spec.
	MaxContainers = 256
)

// Errors of a review socle cannot decide on.
var (
	ErrBadReview   = errors.New("malformed AdmissionReview")
	ErrUnknownKind = errors.New("socle does not admit this kind")
)

// DecodeReview reads an admission.k8s.io/v1 AdmissionReview request.
func DecodeReview(r io.Reader) (*admissionv1.AdmissionReview, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxReviewBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReview, err)
	}
	if len(b) > MaxReviewBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBadReview, MaxReviewBytes)
	}
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &rev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReview, err)
	}
	if rev.APIVersion != "admission.k8s.io/v1" || rev.Kind != "AdmissionReview" {
		return nil, fmt.Errorf("%w: apiVersion %q kind %q, want admission.k8s.io/v1 AdmissionReview", ErrBadReview, rev.APIVersion, rev.Kind)
	}
	if rev.Request == nil || rev.Request.UID == "" {
		return nil, fmt.Errorf("%w: no request or no uid", ErrBadReview)
	}
	return &rev, nil
}

// Container is one container of a pod spec: its image and where that
// image is in the reviewed object (a JSON pointer, for patches).
type Container struct {
	Name  string
	Image string
	Path  string
}

// Object is what a review is about.
type Object struct {
	// Kind is the object's kind (Pod, Deployment, ...), Name its name
	// (empty for a pod created from a generateName).
	Kind, Name string
	Containers []Container
}

// objectOf reads the pod spec of the reviewed object: a Pod (also
// through its ephemeralcontainers subresource), or the pod template of
// a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob.
func objectOf(req *admissionv1.AdmissionRequest) (Object, error) {
	if len(req.Object.Raw) == 0 {
		return Object{}, fmt.Errorf("%w: the request has no object", ErrBadReview)
	}
	kind := req.Kind
	var spec *corev1.PodSpec
	var name, base string
	var err error
	switch {
	case kind.Group == "" && kind.Kind == "Pod":
		var o corev1.Pod
		err, spec, name, base = json.Unmarshal(req.Object.Raw, &o), &o.Spec, o.Name, "/spec"
	case kind.Group == "apps" && kind.Kind == "Deployment":
		var o appsv1.Deployment
		err, spec, name, base = json.Unmarshal(req.Object.Raw, &o), &o.Spec.Template.Spec, o.Name, "/spec/template/spec"
	case kind.Group == "apps" && kind.Kind == "StatefulSet":
		var o appsv1.StatefulSet
		err, spec, name, base = json.Unmarshal(req.Object.Raw, &o), &o.Spec.Template.Spec, o.Name, "/spec/template/spec"
	case kind.Group == "apps" && kind.Kind == "DaemonSet":
		var o appsv1.DaemonSet
		err, spec, name, base = json.Unmarshal(req.Object.Raw, &o), &o.Spec.Template.Spec, o.Name, "/spec/template/spec"
	case kind.Group == "apps" && kind.Kind == "ReplicaSet":
		var o appsv1.ReplicaSet
		err, spec, name, base = json.Unmarshal(req.Object.Raw, &o), &o.Spec.Template.Spec, o.Name, "/spec/template/spec"
	case kind.Group == "batch" && kind.Kind == "Job":
		var o batchv1.Job
		err, spec, name, base = json.Unmarshal(req.Object.Raw, &o), &o.Spec.Template.Spec, o.Name, "/spec/template/spec"
	case kind.Group == "batch" && kind.Kind == "CronJob":
		var o batchv1.CronJob
		err, spec, name, base = json.Unmarshal(req.Object.Raw, &o), &o.Spec.JobTemplate.Spec.Template.Spec, o.Name, "/spec/jobTemplate/spec/template/spec"
	default:
		return Object{}, fmt.Errorf("%w: %s", ErrUnknownKind, gvkString(kind.Group, kind.Version, kind.Kind))
	}
	if err != nil {
		return Object{}, fmt.Errorf("%w: the %s does not decode: %v", ErrBadReview, kind.Kind, err)
	}
	n := len(spec.Containers) + len(spec.InitContainers) + len(spec.EphemeralContainers)
	if n > MaxContainers {
		return Object{}, fmt.Errorf("%w: %d containers, socle admits at most %d in one pod", ErrBadReview, n, MaxContainers)
	}
	o := Object{Kind: kind.Kind, Name: name, Containers: make([]Container, 0, n)}
	for i, c := range spec.Containers {
		o.Containers = append(o.Containers, Container{c.Name, c.Image, base + "/containers/" + strconv.Itoa(i) + "/image"})
	}
	for i, c := range spec.InitContainers {
		o.Containers = append(o.Containers, Container{c.Name, c.Image, base + "/initContainers/" + strconv.Itoa(i) + "/image"})
	}
	for i, c := range spec.EphemeralContainers {
		o.Containers = append(o.Containers, Container{c.Name, c.Image, base + "/ephemeralContainers/" + strconv.Itoa(i) + "/image"})
	}
	return o, nil
}

func gvkString(group, version, kind string) string {
	if group == "" {
		return version + "/" + kind
	}
	return group + "/" + version + "/" + kind
}
