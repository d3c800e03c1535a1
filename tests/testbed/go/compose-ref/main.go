// Command compose-ref is the reference reader for kubectl-devenv's Compose
// import: it loads a Compose file with compose-go, the library Docker Compose
// itself uses, and prints the interpolated, merged model as canonical JSON.
//
//	compose-ref [-profile NAME]... FILE
//
// Variables come from the process environment and the project's .env, as
// `docker compose config` reads them. Only the fields kubectl-devenv maps are
// printed, in a fixed shape, so the Rust reader's output can be compared
// byte for byte after JSON normalisation. Errors go to stderr with exit 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

type profiles []string

func (p *profiles) String() string     { return strings.Join(*p, ",") }
func (p *profiles) Set(v string) error { *p = append(*p, v); return nil }

type port struct {
	Target    uint32 `json:"target"`
	Published string `json:"published"`
	Protocol  string `json:"protocol"`
	HostIP    string `json:"host_ip"`
}

type volume struct {
	Type     string `json:"type"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only"`
}

type healthcheck struct {
	Test        []string `json:"test"`
	Interval    *int64   `json:"interval"`
	Timeout     *int64   `json:"timeout"`
	Retries     *uint64  `json:"retries"`
	StartPeriod *int64   `json:"start_period"`
	Disable     bool     `json:"disable"`
}

type service struct {
	Image       string             `json:"image"`
	Build       *string            `json:"build"`
	Environment map[string]*string `json:"environment"`
	Command     []string           `json:"command"`
	Entrypoint  []string           `json:"entrypoint"`
	Ports       []port             `json:"ports"`
	Expose      []string           `json:"expose"`
	Volumes     []volume           `json:"volumes"`
	DependsOn   map[string]string  `json:"depends_on"`
	Healthcheck *healthcheck       `json:"healthcheck"`
	User        string             `json:"user"`
	Profiles    []string           `json:"profiles"`
}

type model struct {
	Services map[string]service `json:"services"`
	Volumes  []string           `json:"volumes"`
}

func nanos(d *types.Duration) *int64 {
	if d == nil {
		return nil
	}
	n := int64(*d)
	return &n
}

func main() {
	var wanted profiles
	flag.Var(&wanted, "profile", "profile to enable (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: compose-ref [-profile NAME]... FILE")
		os.Exit(2)
	}
	file, err := filepath.Abs(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles(wanted),
		cli.WithName("compose-ref"),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	project, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := model{Services: map[string]service{}, Volumes: []string{}}
	for name := range project.Volumes {
		out.Volumes = append(out.Volumes, name)
	}
	sort.Strings(out.Volumes)
	for name, s := range project.Services {
		svc := service{
			Image:       s.Image,
			Environment: map[string]*string{},
			Command:     s.Command,
			Entrypoint:  s.Entrypoint,
			Ports:       []port{},
			Expose:      s.Expose,
			Volumes:     []volume{},
			DependsOn:   map[string]string{},
			User:        s.User,
			Profiles:    s.Profiles,
		}
		if s.Build != nil {
			context := s.Build.Context
			svc.Build = &context
		}
		for k, v := range s.Environment {
			svc.Environment[k] = v
		}
		for _, p := range s.Ports {
			svc.Ports = append(svc.Ports, port{p.Target, p.Published, p.Protocol, p.HostIP})
		}
		for _, v := range s.Volumes {
			svc.Volumes = append(svc.Volumes, volume{v.Type, v.Source, v.Target, v.ReadOnly})
		}
		for dep, d := range s.DependsOn {
			svc.DependsOn[dep] = d.Condition
		}
		if h := s.HealthCheck; h != nil {
			svc.Healthcheck = &healthcheck{
				Test:        h.Test,
				Interval:    nanos(h.Interval),
				Timeout:     nanos(h.Timeout),
				Retries:     h.Retries,
				StartPeriod: nanos(h.StartPeriod),
				Disable:     h.Disable,
			}
		}
		out.Services[name] = svc
	}
	encoded, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(encoded))
}
