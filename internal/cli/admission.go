package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/admission"
	"github.com/socle-dev/socle/internal/config"
)

func newAdmissionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "admission", Short: "Kubernetes admission: only promoted digests run"}
	var cfgPath, cluster string
	conf := &cobra.Command{
		Use:   "config",
		Short: "Print a cluster's ValidatingWebhookConfiguration and MutatingWebhookConfiguration",
		Long: `config prints, for kubectl apply, the webhook configurations that send a
cluster's pods and workloads to socle serve's admission listener: one
webhook per namespace mapping of the cluster (its namespaceSelector), the
CA bundle of socle's admission certificate (DATA_DIR/admission, made
when missing), admission.failure_policy (Fail by default: the cluster
fails closed) and admission.timeout. The mutating webhook pins tags to
the digest socle recorded; the validating one admits only promoted
digests.`,
		Example: `  socle admission config --cluster main | kubectl apply -f -`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g, cfgPath)
			if err != nil {
				return err
			}
			return printWebhookConfig(g, cfg, cluster)
		},
	}
	configFlag(conf.Flags(), &cfgPath)
	conf.Flags().StringVar(&cluster, "cluster", "", "the cluster of clusters: to configure (default the only one)")
	cmd.AddCommand(conf)
	return cmd
}

func printWebhookConfig(g *globals, cfg *config.File, cluster string) error {
	if cluster == "" && len(cfg.Clusters) == 1 {
		cluster = cfg.Clusters[0].Name
	}
	cl, ok := cfg.Cluster(cluster)
	if !ok {
		return usageError(fmt.Errorf("no cluster %q in clusters: of %s", cluster, cfg.Path()))
	}
	var ca []byte
	var err error
	if cfg.Admission.TLS.CA != "" {
		ca, err = os.ReadFile(cfg.Resolve(cfg.Admission.TLS.CA))
	} else {
		ca, err = admission.ReadCA(filepath.Join(g.dataDir, "admission"))
	}
	if err != nil {
		return err
	}
	out, err := admission.WebhookConfigurations(cl, cfg.Admission, ca)
	if err != nil {
		return usageError(err)
	}
	_, err = g.out.Write(out)
	return err
}
