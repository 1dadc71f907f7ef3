package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/careerops/jobs/internal/testkit"
)

// RabbitMQ is the run's private RabbitMQ node: its own node name, AMQP and distribution
// ports, epmd, Erlang cookie (HOME), data and log directories, no plugins. It shares nothing
// with the machine's RabbitMQ, so the suite may stop and start it freely.
type RabbitMQ struct {
	Node string // chaos-<random>@localhost
	Port int    // AMQP, on 127.0.0.1

	dir     string
	scripts string // rabbitmq-server and rabbitmqctl
	env     []string
	epmd    *testkit.Proc
	server
}

// rabbitScripts finds rabbitmq-server and rabbitmqctl: CHAOS_RABBITMQ_SCRIPTS, else the
// package's own scripts (not the /usr/sbin wrappers, which switch to the rabbitmq user and
// its shared cookie).
func rabbitScripts() (string, error) {
	for _, d := range []string{os.Getenv("CHAOS_RABBITMQ_SCRIPTS"), "/usr/lib/rabbitmq/bin"} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "rabbitmq-server")); err == nil {
			return d, nil
		}
	}
	p, err := exec.LookPath("rabbitmq-server")
	if err != nil {
		return "", fmt.Errorf("no rabbitmq-server found; set CHAOS_RABBITMQ_SCRIPTS")
	}
	return filepath.Dir(p), nil
}

func startRabbitMQ(ctx context.Context, h *Harness) (*RabbitMQ, error) {
	scripts, err := rabbitScripts()
	if err != nil {
		return nil, err
	}
	epmdPath, err := exec.LookPath("epmd")
	if err != nil {
		return nil, fmt.Errorf("epmd not found: %w", err)
	}
	r := &RabbitMQ{Node: "chaos-" + testkit.RandomHex(4) + "@localhost", Port: h.Port(), dir: filepath.Join(h.Root, "rabbitmq"),
		scripts: scripts, server: server{h: h}}
	dist, epmdPort, ctlMin := h.Port(), h.Port(), h.PortRange(11)
	home := filepath.Join(r.dir, "home")
	for _, d := range []string{home, filepath.Join(r.dir, "mnesia"), filepath.Join(r.dir, "log")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		// RABBITMQ_CONFIG_FILE names the file without its .conf extension.
		"rabbitmq.conf": fmt.Sprintf("listeners.tcp.local = 127.0.0.1:%d\nloopback_users = none\n"+
			"log.file.level = info\nlog.console = false\n", r.Port),
		"enabled_plugins":   "[].\n",
		"rabbitmq-env.conf": "# empty: keeps the machine's /etc/rabbitmq/rabbitmq-env.conf out\n",
		"advanced.config":   "[].\n",
		// Created by the node otherwise; written here so that rabbitmqctl can read it at once.
		"home/.erlang.cookie": strings.ToUpper(testkit.RandomHex(10)),
	}
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "cookie") {
			mode = 0o400
		}
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(content), mode); err != nil {
			return nil, err
		}
	}
	r.env = testkit.ChildEnv(
		"HOME="+home,
		"RABBITMQ_NODENAME="+r.Node,
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"ERL_EPMD_PORT="+strconv.Itoa(epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"RABBITMQ_CTL_DIST_PORT_MIN="+strconv.Itoa(ctlMin),
		"RABBITMQ_CTL_DIST_PORT_MAX="+strconv.Itoa(ctlMin+10),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(r.dir, "rabbitmq-env.conf"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(r.dir, "rabbitmq"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(r.dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(r.dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(r.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(r.dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(r.dir, "rabbitmq.pid"),
		"ERL_FLAGS=-kernel inet_dist_use_interface {127,0,0,1}",
		// Makes rabbitmq-server exec the Erlang VM instead of running it as a child of a
		// shell: the VM is then the process we started, killed with us if we die.
		"RUNNING_UNDER_SYSTEMD=true",
	)
	// Our own epmd, on our own port, as our child: the node registers there, not with the
	// machine's epmd, and nothing outlives the run.
	if r.epmd, err = h.start(testkit.ProcSpec{Name: "epmd", Path: epmdPath,
		Args: []string{"-port", strconv.Itoa(epmdPort), "-address", "127.0.0.1"}, Env: r.env}); err != nil {
		return nil, err
	}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// URL is the AMQP URL of a virtual host.
func (r *RabbitMQ) URL(vhost string) string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/%s", r.Port, vhost)
}

// Start starts the node and waits until it accepts AMQP connections.
func (r *RabbitMQ) Start(ctx context.Context) error {
	// As the service starter does (see go-svc.md): the node needs many file descriptors.
	err := r.start(ctx, testkit.ProcSpec{Name: "rabbitmq", Path: "/bin/sh", Env: r.env, Dir: r.dir,
		Args: []string{"-c", `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0"`,
			filepath.Join(r.scripts, "rabbitmq-server")}}, 90*time.Second, 200*time.Millisecond, func() error {
		conn, err := amqp.DialConfig(r.URL(""), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err == nil {
			_ = conn.Close() // it answered: that was the question
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("%w (node logs in %s)", err, filepath.Join(r.dir, "log"))
	}
	return nil
}

// Stop stops the node gracefully (rabbitmqctl stop) and waits for the VM to exit.
func (r *RabbitMQ) Stop(ctx context.Context) error {
	return r.stop(func() error {
		_, err := r.Ctl(ctx, "stop")
		return err
	})
}

// Ctl runs rabbitmqctl -n NODE args... and returns its output.
func (r *RabbitMQ) Ctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(r.scripts, "rabbitmqctl"), append([]string{"-n", r.Node}, args...)...)
	cmd.Env = r.env
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("rabbitmqctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// AddVhost creates a virtual host that guest may use fully.
func (r *RabbitMQ) AddVhost(ctx context.Context, vhost string) error {
	if _, err := r.Ctl(ctx, "add_vhost", vhost); err != nil {
		return err
	}
	_, err := r.Ctl(ctx, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
	return err
}

// QueueDepth is a queue's ready plus unacknowledged messages (rabbitmqctl list_queues).
func (r *RabbitMQ) QueueDepth(ctx context.Context, vhost, queue string) (int, error) {
	out, err := r.Ctl(ctx, "list_queues", "-q", "--no-table-headers", "-p", vhost, "name", "messages_ready", "messages_unacknowledged")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == queue {
			ready, err1 := strconv.Atoi(f[1])
			unacked, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil {
				return 0, fmt.Errorf("list_queues: cannot read %q", line)
			}
			return ready + unacked, nil
		}
	}
	return 0, fmt.Errorf("list_queues: no queue %s in vhost %s: %q", queue, vhost, out)
}

func (r *RabbitMQ) shutdown() {
	r.end(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := r.Ctl(ctx, "stop")
		return err
	}, 20*time.Second)
	if r.epmd != nil {
		r.epmd.KillGroup()
	}
}
