package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/client"
)

// whoami is the answer of GET /api/v1/whoami.
type whoami struct {
	User, Name, Role, Actor string
}

func newLoginCmd(g *globals) *cobra.Command {
	var name, caFile string
	var tokenStdin bool
	cmd := &cobra.Command{
		Use:   "login SERVER",
		Short: "Keep a socle server and a token for the commands that read or change the fleet",
		Long: `login checks a token against SERVER (GET /api/v1/whoami) and keeps both in
the user's configuration directory (mode 0600), as the current context.
The token is read from standard input: typed at the prompt, or piped with
--token-stdin. Several contexts may be kept (--name, socle context use).
SOCLE_SERVER and SOCLE_TOKEN override the context, for CI.`,
		Example: `  socle login https://socle.example.org
  echo "$SOCLE_TOKEN" | socle login https://socle.example.org --token-stdin --name prod-cluster`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := strings.TrimSuffix(args[0], "/")
			u, err := url.Parse(server)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return usageError(fmt.Errorf("server %q: want https://host[:port]", args[0]))
			}
			if !tokenStdin {
				fmt.Fprintf(g.errOut, "Token for %s: ", server)
			}
			token, err := readToken(cmd.InOrStdin())
			if err != nil {
				return err
			}
			c := client.Context{Server: server, Token: token, CAFile: caFile}
			cl, err := client.FromContext(c)
			if err != nil {
				return err
			}
			var who whoami
			if err := cl.Do(cmd.Context(), "GET", "/api/v1/whoami", nil, &who); err != nil {
				return err
			}
			cs, err := client.LoadContexts()
			if err != nil {
				return err
			}
			if name == "" {
				name = u.Host
			}
			cs.Contexts[name], cs.Current = c, name
			if err := cs.Save(); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "logged in to %s as %s (%s); context %q\n", server, who.Actor, who.Role, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the context's name (default the server's host)")
	cmd.Flags().BoolVar(&tokenStdin, "token-stdin", false, "read the token from standard input without a prompt")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "PEM certificates the server's TLS certificate is checked against")
	return cmd
}

// readToken reads one line: the token.
func readToken(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	t := strings.TrimSpace(line)
	if t == "" {
		return "", usageError(errors.New("no token given on standard input"))
	}
	return t, nil
}

func newLogoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [CONTEXT]",
		Short: "Forget a context's server and token (default the current one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := client.LoadContexts()
			if err != nil {
				return err
			}
			name := cs.Current
			if len(args) == 1 {
				name = args[0]
			}
			if _, ok := cs.Contexts[name]; !ok {
				return usageError(fmt.Errorf("no context %q", name))
			}
			delete(cs.Contexts, name)
			if cs.Current == name {
				cs.Current = ""
			}
			if err := cs.Save(); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "forgot %s\n", name)
			return nil
		},
	}
}

func newContextCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "context", Short: "The socle servers this CLI knows (socle login adds them)"}
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List the contexts; * marks the current one", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := client.LoadContexts()
			if err != nil {
				return err
			}
			for _, n := range cs.Names() {
				mark := " "
				if n == cs.Current {
					mark = "*"
				}
				fmt.Fprintf(g.out, "%s %s\t%s\n", mark, n, cs.Contexts[n].Server)
			}
			if os.Getenv("SOCLE_SERVER") != "" {
				fmt.Fprintf(g.out, "(SOCLE_SERVER=%s overrides them)\n", os.Getenv("SOCLE_SERVER"))
			}
			return nil
		},
	}, &cobra.Command{
		Use: "use CONTEXT", Short: "Make a context the current one", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := client.LoadContexts()
			if err != nil {
				return err
			}
			if _, ok := cs.Contexts[args[0]]; !ok {
				return usageError(fmt.Errorf("no context %q (socle context list)", args[0]))
			}
			cs.Current = args[0]
			if err := cs.Save(); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "using %s (%s)\n", args[0], cs.Contexts[args[0]].Server)
			return nil
		},
	})
	return cmd
}
