package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"podos.dev/podos/boardd/api"
	"podos.dev/podos/boardd/workloads"
)

const usage = `usage: boardctl [--url URL] [--user USER] [--password-file FILE] [--insecure | --ca-file FILE] COMMAND

commands:
  workloads list                      every workload with its state
  workloads get NAME                  one workload (JSON)
  workloads apply -f SPEC.yaml        create or replace workloads (YAML or JSON; several YAML documents allowed)
  workloads logs NAME [-f] [--tail N] output of a workload; -f follows it
  workloads exec NAME -- CMD [ARG...] run a command in a running workload
  workloads rm NAME                   stop and remove a workload
  images push ARCHIVE.tar             upload an OCI image archive

environment: PODOS_URL, PODOS_USER, PODOS_PASSWORD_FILE
`

// usageError is bad command-line usage (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitCode carries exec's exit status.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit code %d", int(e)) }

type client struct {
	base     *url.URL
	user, pw string
	http     *http.Client
	stdout   io.Writer
	stderr   io.Writer
	stdin    io.Reader
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	err := runErr(ctx, args, stdin, stdout, stderr, getenv)
	var ue usageError
	var ec exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ec):
		return int(ec)
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "boardctl: %s\n%s", ue.msg, usage)
		return 2
	}
	fmt.Fprintf(stderr, "boardctl: %s\n", oneLine(err.Error()))
	return 1
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func runErr(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("boardctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	urlFlag := fs.String("url", getenv("PODOS_URL"), "boardd URL, e.g. https://10.0.0.5:8443")
	user := fs.String("user", getenv("PODOS_USER"), "account name")
	pwFile := fs.String("password-file", getenv("PODOS_PASSWORD_FILE"), "file whose first line is the password")
	insecure := fs.Bool("insecure", false, "accept any server certificate (boardd's self-signed one)")
	caFile := fs.String("ca-file", "", "PEM certificate(s) to trust")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usageError{"no command"}
	}
	if *urlFlag == "" {
		return usageError{"no boardd URL: --url or PODOS_URL"}
	}
	base, err := url.Parse(*urlFlag)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return usageError{fmt.Sprintf("bad URL %q: want https://host:port", *urlFlag)}
	}
	c := &client{base: base, user: *user, stdout: stdout, stderr: stderr, stdin: stdin}
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return fmt.Errorf("password file: %w", err)
		}
		c.pw = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	}
	if c.user != "" && *pwFile == "" {
		return usageError{"--user needs --password-file (or PODOS_PASSWORD_FILE)"}
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case *insecure && *caFile != "":
		return usageError{"--insecure and --ca-file exclude each other"}
	case *insecure:
		tlsCfg.InsecureSkipVerify = true
	case *caFile != "":
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("CA file %s holds no PEM certificate", *caFile)
		}
		tlsCfg.RootCAs = pool
	}
	c.http = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: 2 * time.Minute}}

	switch rest[0] {
	case "workloads", "workload", "wl":
		return c.workloads(ctx, rest[1:])
	case "images", "image":
		if len(rest) != 3 || rest[1] != "push" {
			return usageError{"usage: images push ARCHIVE.tar"}
		}
		return c.pushImage(ctx, rest[2])
	case "help":
		return flag.ErrHelp
	}
	return usageError{fmt.Sprintf("unknown command %q", rest[0])}
}

func (c *client) workloads(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{"workloads: missing subcommand (list, get, apply, logs, exec, rm)"}
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list", "ls":
		if len(args) != 0 {
			return usageError{"usage: workloads list"}
		}
		return c.list(ctx)
	case "get":
		if len(args) != 1 {
			return usageError{"usage: workloads get NAME"}
		}
		var info json.RawMessage
		if err := c.call(ctx, "GET", "workloads/"+url.PathEscape(args[0]), nil, "", &info); err != nil {
			return err
		}
		c.stdout.Write(append(info, '\n'))
		return nil
	case "apply":
		fs := flag.NewFlagSet("apply", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		file := fs.String("f", "", "spec file (YAML or JSON; - for stdin)")
		if err := fs.Parse(args); err != nil || *file == "" || fs.NArg() != 0 {
			return usageError{"usage: workloads apply -f SPEC.yaml"}
		}
		return c.apply(ctx, *file)
	case "logs":
		fs := flag.NewFlagSet("logs", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		follow := fs.Bool("f", false, "follow")
		tail := fs.Int("tail", 100, "lines of history (0: all kept)")
		name, rest := "", args
		if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			name, rest = rest[0], rest[1:]
		}
		if err := fs.Parse(rest); err != nil {
			return usageError{"usage: workloads logs NAME [-f] [--tail N]"}
		}
		if name == "" && fs.NArg() == 1 {
			name = fs.Arg(0)
		} else if fs.NArg() != 0 || name == "" {
			return usageError{"usage: workloads logs NAME [-f] [--tail N]"}
		}
		return c.logs(ctx, name, *follow, *tail)
	case "exec":
		if len(args) < 3 || args[1] != "--" {
			return usageError{"usage: workloads exec NAME -- CMD [ARG...]"}
		}
		return c.exec(ctx, args[0], args[2:])
	case "rm", "delete":
		if len(args) != 1 {
			return usageError{"usage: workloads rm NAME"}
		}
		if err := c.call(ctx, "DELETE", "workloads/"+url.PathEscape(args[0]), nil, "", nil); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "workload %s removed\n", args[0])
		return nil
	}
	return usageError{fmt.Sprintf("workloads: unknown subcommand %q", sub)}
}

// call does one API request; a non-2xx answer becomes an error quoting
// the API's message (and field).
func (c *client) call(ctx context.Context, method, path string, body io.Reader, ctype string, out any) error {
	resp, err := c.do(ctx, method, path, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad response: %w", method, path, err)
	}
	return nil
}

func (c *client) do(ctx context.Context, method, path string, body io.Reader, ctype string) (*http.Response, error) {
	u := c.base.JoinPath("/podos/v1/", path)
	if i := strings.IndexByte(path, '?'); i >= 0 {
		u = c.base.JoinPath("/podos/v1/", path[:i])
		u.RawQuery = path[i+1:]
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pw)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach boardd at %s: %w", c.base.Host, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e api.ErrorBody
	msg := ""
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	} else if m := redfishMessage(b); m != "" {
		msg = m
	} else {
		msg = strings.TrimSpace(string(b))
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("authentication failed (check --user and --password-file): %s", msg)
	case http.StatusForbidden:
		return nil, fmt.Errorf("permission denied: %s", msg)
	}
	return nil, fmt.Errorf("%s (HTTP %d)", msg, resp.StatusCode)
}

// redfishMessage reads a Redfish error body (the 401 of the Redfish auth
// middleware).
func redfishMessage(b []byte) string {
	var r struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &r) == nil {
		return r.Error.Message
	}
	return ""
}

func (c *client) list(ctx context.Context) error {
	var l api.WorkloadList
	if err := c.call(ctx, "GET", "workloads", nil, "", &l); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tPRIORITY\tRESTARTS\tIMAGE\tPROTECTION")
	for _, w := range l.Workloads {
		prot := "-"
		if w.Protection != "" {
			prot = w.Protection
			if w.ShedReason != "" {
				prot += ": " + w.ShedReason
			}
		}
		state := w.State
		if w.Error != "" {
			state += " (" + oneLine(w.Error) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", w.Name, state, w.Priority, w.Restarts, w.Spec.Image, prot)
	}
	return tw.Flush()
}

// readSpecs parses a spec file: YAML documents (JSON is YAML), each one
// workload, with unknown fields rejected.
func readSpecs(r io.Reader, name string) ([]workloads.Spec, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var out []workloads.Spec
	for {
		var s workloads.Spec
		err := dec.Decode(&s)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s", name, oneLine(err.Error()))
		}
		if s.Name == "" {
			return nil, fmt.Errorf("%s: document %d: field name: is required", name, len(out)+1)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no workload spec", name)
	}
	return out, nil
}

func (c *client) apply(ctx context.Context, file string) error {
	var r io.Reader
	if file == "-" {
		r = c.stdin
	} else {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	specs, err := readSpecs(bufio.NewReader(r), file)
	if err != nil {
		return err
	}
	for _, s := range specs {
		b, _ := json.Marshal(s)
		resp, err := c.do(ctx, "PUT", "workloads/"+url.PathEscape(s.Name), bytes.NewReader(b), "application/json")
		if err != nil {
			return fmt.Errorf("workload %s: %w", s.Name, err)
		}
		resp.Body.Close()
		verb := "configured"
		if resp.StatusCode == http.StatusCreated {
			verb = "created"
		}
		fmt.Fprintf(c.stdout, "workload %s %s\n", s.Name, verb)
	}
	return nil
}

func (c *client) logs(ctx context.Context, name string, follow bool, tail int) error {
	q := url.Values{"tail": {fmt.Sprint(tail)}}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.do(ctx, "GET", "workloads/"+url.PathEscape(name)+"/logs?"+q.Encode(), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(c.stdout, resp.Body)
	if err != nil && ctx.Err() != nil {
		return nil // interrupted while following
	}
	return err
}

func (c *client) exec(ctx context.Context, name string, cmd []string) error {
	b, _ := json.Marshal(api.ExecRequest{Cmd: cmd})
	var res workloads.ExecResult
	if err := c.call(ctx, "POST", "workloads/"+url.PathEscape(name)+"/exec", bytes.NewReader(b), "application/json", &res); err != nil {
		return err
	}
	io.WriteString(c.stdout, res.Stdout)
	io.WriteString(c.stderr, res.Stderr)
	if res.Truncated {
		fmt.Fprintln(c.stderr, "boardctl: output truncated")
	}
	if res.ExitCode != 0 {
		return exitCode(res.ExitCode)
	}
	return nil
}

func (c *client) pushImage(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var l api.ImageList
	if err := c.call(ctx, "POST", "images", f, "application/x-tar", &l); err != nil {
		return err
	}
	for _, n := range l.Images {
		fmt.Fprintf(c.stdout, "image %s imported\n", n)
	}
	return nil
}
