package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// RabbitAdmin is a client of RabbitMQ's management HTTP API: virtual hosts, node facts.
type RabbitAdmin struct {
	Base       string // e.g. http://127.0.0.1:15672
	User, Pass string
	Client     *http.Client
}

// NewRabbitAdmin is a client of the management API at managementURL ("" for port 15672 of
// amqpURL's host), with amqpURL's credentials (guest/guest if it has none). Its client keeps
// no idle connection, which would trip the goroutine-leak checks of the tests.
func NewRabbitAdmin(managementURL, amqpURL string) (*RabbitAdmin, error) {
	u, err := url.Parse(amqpURL)
	if err != nil {
		return nil, errors.New("testkit: the RabbitMQ URL is not a valid URL") // the error would print the password
	}
	a := &RabbitAdmin{Base: strings.TrimRight(managementURL, "/"), User: "guest", Pass: "guest",
		Client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	if a.Base == "" {
		a.Base = "http://" + net.JoinHostPort(u.Hostname(), "15672")
	}
	if u.User != nil {
		a.User = u.User.Username()
		if p, ok := u.User.Password(); ok {
			a.Pass = p
		}
	}
	return a, nil
}

// Do sends a request with body (JSON-encoded if not nil) and decodes the answer into out (if
// not nil); a status of 300 or more is an error.
func (a *RabbitAdmin) Do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("rabbitmq management: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, r)
	if err != nil {
		return fmt.Errorf("rabbitmq management: %w", err)
	}
	req.SetBasicAuth(a.User, a.Pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.Client.Do(req)
	if err != nil {
		return fmt.Errorf("rabbitmq management: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("rabbitmq management: %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("rabbitmq management: %s %s: %d %.200s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("rabbitmq management: %s %s: %w", method, path, err)
		}
	}
	return nil
}

// Answers reports whether the API answers within a second.
func (a *RabbitAdmin) Answers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return a.Do(ctx, http.MethodGet, "/api/overview", nil, nil) == nil
}

// CreateVhost creates a virtual host and grants a.User every permission on it.
func (a *RabbitAdmin) CreateVhost(ctx context.Context, name string) error {
	v := url.PathEscape(name)
	if err := a.Do(ctx, http.MethodPut, "/api/vhosts/"+v, map[string]any{}, nil); err != nil {
		return err
	}
	return a.Do(ctx, http.MethodPut, "/api/permissions/"+v+"/"+url.PathEscape(a.User),
		map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, nil)
}

// DeleteVhost deletes a virtual host and everything in it.
func (a *RabbitAdmin) DeleteVhost(ctx context.Context, name string) error {
	return a.Do(ctx, http.MethodDelete, "/api/vhosts/"+url.PathEscape(name), nil, nil)
}

// NodePID is the OS pid of the (first) RabbitMQ node.
func (a *RabbitAdmin) NodePID(ctx context.Context) (int, error) {
	var nodes []struct {
		OSPID string `json:"os_pid"`
	}
	if err := a.Do(ctx, http.MethodGet, "/api/nodes", nil, &nodes); err != nil {
		return 0, err
	}
	if len(nodes) == 0 {
		return 0, errors.New("rabbitmq management: no node")
	}
	pid, err := strconv.Atoi(nodes[0].OSPID)
	if err != nil {
		return 0, fmt.Errorf("rabbitmq management: node pid: %w", err)
	}
	return pid, nil
}

// Version is the server's RabbitMQ version.
func (a *RabbitAdmin) Version(ctx context.Context) (string, error) {
	var overview struct {
		Version string `json:"rabbitmq_version"`
	}
	err := a.Do(ctx, http.MethodGet, "/api/overview", nil, &overview)
	return overview.Version, err
}
