package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/oci"
)

type checkOptions struct {
	output            string
	file              string
	exitCode          int
	severity          string
	ignore            []string
	sets              []string
	kubernetesVersion string
	strict            bool
	crds              []string
	registries        []string
	pinPackages       bool
	pinBase           bool
	images            []string
	image             imageOptions
	policies          []string
	namespaces        []string
	allNamespaces     bool
	data              []string
	healthcheck       bool
}

func (o *checkOptions) AddFlags(f *pflag.FlagSet) {
	f.StringVarP(&o.output, "output", "o", "table", "output format: "+strings.Join(check.Formats, ", "))
	f.StringVar(&o.file, "file", "", "write the report to this file instead of standard output")
	f.IntVar(&o.exitCode, "exit-code", 0, "exit with this status when any finding remains")
	f.StringVar(&o.severity, "severity", "", "report only these severities, comma-separated (CRITICAL,HIGH,MEDIUM,LOW)")
	f.StringArrayVar(&o.ignore, "ignore", nil, "ignore a rule everywhere: RULE or RULE=reason (repeatable)")
	f.StringSliceVar(&o.sets, "rules", nil, "rule sets to run, comma-separated: baseline, restricted, hardening, dockerfile, image, schema (default all)")
	f.StringVar(&o.kubernetesVersion, "kubernetes-version", check.DefaultKubernetesVersion, "Kubernetes version whose API schema manifests are validated against: "+strings.Join(check.KubernetesVersions(), ", "))
	f.BoolVar(&o.strict, "strict", false, "refuse fields the schema does not declare")
	f.StringArrayVar(&o.crds, "crd", nil, "CRD manifests, or a directory of them, giving custom resources their schema (repeatable)")
	f.StringArrayVar(&o.registries, "registry", nil, "an allowed registry (host or host/path); images from others fail k8s-image-registry (repeatable)")
	f.BoolVar(&o.pinPackages, "pin-packages", false, "ask apt and apk installs in Dockerfiles to pin versions")
	f.BoolVar(&o.pinBase, "pin-base", false, "ask every external FROM in Dockerfiles to be pinned by digest")
	f.BoolVar(&o.healthcheck, "require-healthcheck", false, "ask the final stage of Dockerfiles for a HEALTHCHECK")
	f.StringArrayVar(&o.images, "image", nil, "check an image (registry reference, oci:DIR, docker-archive:FILE) with the image rules (repeatable)")
	o.image.AddFlags(f)
	f.StringArrayVarP(&o.policies, "policy", "p", nil, "run conftest-style Rego policies from this directory or file instead of the built-in rules (repeatable)")
	f.StringArrayVar(&o.namespaces, "namespace", nil, "with --policy: the Rego packages to evaluate (default main; repeatable)")
	f.BoolVar(&o.allNamespaces, "all-namespaces", false, "with --policy: evaluate every package")
	f.StringArrayVar(&o.data, "data", nil, "with --policy: JSON or YAML files, or directories of them, loaded as data (repeatable)")
}

func newCheckCmd(g *globals) *cobra.Command {
	o := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check [PATH...] [--image REF]",
		Short: "Check Dockerfiles and Kubernetes manifests against policy and hardening rules",
		Long: `check validates Kubernetes manifests against the API schema of a Kubernetes
version (built from client-go's structured schema; CRDs from --crd or from the
manifests themselves), runs the Pod Security Standards (baseline, restricted)
and hardening rules on every workload kind, the Dockerfile rules on
Dockerfiles, and with --image the image rules (user, secrets, setuid files
with the layer that added them, package caches, labels). PATH is a file, a directory, or - for a YAML stream on standard
input (helm template ... | socle check -).

Every rule has an ID, a severity, a why and a fix (socle check rules). Ignore
a finding inline with "# socle:ignore RULE reason" in the document or above
the Dockerfile instruction, a whole file with "# socle:ignore-file RULE
reason", or a run with --ignore RULE=reason.`,
		Example: `  socle check deploy/ Dockerfile
  helm template chart | socle check --rules restricted,schema --exit-code 1 -
  socle check -o sarif --file check.sarif --kubernetes-version 1.32 --strict k8s/`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && len(o.images) == 0 {
				return usageError(fmt.Errorf("give a PATH or an --image"))
			}
			return runCheck(cmd.Context(), g, o, args, cmd.InOrStdin())
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.AddCommand(&cobra.Command{
		Use:   "rules",
		Short: "List the rules: ID, severity, sets, why and fix",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, r := range check.Rules() {
				fmt.Fprintf(g.out, "%s\t%s\t%s\n  why: %s\n  fix: %s\n", r.ID, r.Severity, strings.Join(r.Sets, ","), r.Why, r.Fix)
			}
			return nil
		},
	})
	return cmd
}

func (o *checkOptions) options() (check.Options, error) {
	opts := check.Options{
		Schema:     check.SchemaOptions{KubernetesVersion: o.kubernetesVersion, Strict: o.strict},
		Workload:   check.WorkloadOptions{Registries: o.registries},
		Dockerfile: check.DockerfileOptions{PinPackages: o.pinPackages, PinBase: o.pinBase, RequireHealthcheck: o.healthcheck},
		Ignore:     map[string]string{},
	}
	if len(o.sets) > 0 {
		rules, err := check.RulesOf(o.sets)
		if err != nil {
			return opts, usageError(fmt.Errorf("--rules: %w", err))
		}
		opts.Rules = rules
	}
	for _, ig := range o.ignore {
		rule, reason, _ := strings.Cut(ig, "=")
		opts.Ignore[rule] = cmpOrString(reason, "--ignore")
	}
	if len(o.crds) > 0 {
		inputs, err := check.Collect(o.crds, nil)
		if err != nil {
			return opts, fmt.Errorf("--crd: %w", err)
		}
		crds := check.NewCRDs()
		for _, in := range inputs {
			data, err := in.Load()
			if err != nil {
				return opts, fmt.Errorf("--crd: %w", err)
			}
			objs, err := check.ParseManifests(in.Name, data)
			if err != nil {
				return opts, fmt.Errorf("--crd: %w", err)
			}
			for _, obj := range objs {
				if _, err := crds.Add(obj); err != nil {
					return opts, fmt.Errorf("--crd: %w", err)
				}
			}
		}
		opts.Schema.CRDs = crds
	}
	return opts, nil
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func runCheck(ctx context.Context, g *globals, o *checkOptions, paths []string, stdin io.Reader) error {
	if !validFormat(o.output, check.Formats) {
		return usageError(fmt.Errorf("--output %q: want one of %s", o.output, strings.Join(check.Formats, ", ")))
	}
	sev, err := parseCheckSeverities(o.severity)
	if err != nil {
		return usageError(fmt.Errorf("--severity: %w", err))
	}
	opts, err := o.options()
	if err != nil {
		return err
	}
	paths, images := splitImageArgs(paths)
	o.images = append(o.images, images...)
	inputs, err := check.Collect(paths, stdin)
	if err != nil {
		return err
	}
	if len(o.policies) > 0 {
		return runPolicyCheck(ctx, g, o, inputs)
	}
	r, err := check.Run(ctx, inputs, opts)
	if err != nil {
		return err
	}
	for _, ref := range o.images {
		res, err := checkImage(ctx, g, o.image, ref, 10)
		if err != nil {
			return err
		}
		r.AddImage(ref, res, opts)
	}
	r.Filter(sev)
	if err := writeTo(g.out, o.file, func(w io.Writer) error { return check.Write(w, o.output, r) }); err != nil {
		return err
	}
	if code := check.ExitCode(r, o.exitCode); code != 0 {
		return &statusError{code: code}
	}
	return nil
}

func parseCheckSeverities(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if check.SeverityRank(p) == 0 {
			return nil, fmt.Errorf("unknown severity %q (want CRITICAL, HIGH, MEDIUM or LOW)", p)
		}
		out[p] = true
	}
	return out, nil
}

// runPolicyCheck is socle check --policy: conftest's semantics and, with
// -o json, its output shape.
func runPolicyCheck(ctx context.Context, g *globals, o *checkOptions, inputs []check.Input) error {
	if o.output != "table" && o.output != "json" {
		return usageError(fmt.Errorf("--output %q: with --policy, table or json", o.output))
	}
	p, err := check.LoadPolicies(o.policies, o.data, o.namespaces, o.allNamespaces)
	if err != nil {
		return err
	}
	rs, err := p.RunPolicies(ctx, inputs)
	if err != nil {
		return err
	}
	if err := writeTo(g.out, o.file, func(w io.Writer) error { return check.WritePolicyResults(w, o.output, rs) }); err != nil {
		return err
	}
	if fails, _ := check.PolicyFailures(rs); fails > 0 && o.exitCode != 0 {
		return &statusError{code: o.exitCode}
	}
	return nil
}

// splitImageArgs tells image references among the arguments: an argument
// that names no file and reads as an image reference (oci:DIR,
// docker-archive:FILE, or a registry reference with a tag or digest).
func splitImageArgs(args []string) (paths, images []string) {
	for _, a := range args {
		if a == "-" {
			paths = append(paths, a)
			continue
		}
		if _, err := os.Stat(a); err == nil {
			paths = append(paths, a)
			continue
		}
		if ref, err := oci.ParseImageRef(a); err == nil && (ref.Transport != oci.TransportRegistry || strings.ContainsAny(a, ":@")) {
			images = append(images, a)
			continue
		}
		paths = append(paths, a) // reported as missing by Collect
	}
	return paths, images
}
