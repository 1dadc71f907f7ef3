// Package config reads every program's settings, one way: the program starts from a struct
// that holds its defaults, github.com/sethvargo/go-envconfig overlays the environment on it
// (through the getenv the program was given, never the process environment directly), and,
// for a program with flags, the command line overlays the environment.
//
// A field names its variable with `env:"NAME"` (`env:"NAME,required"` when it has no
// default), its flag, if any, with `flag:"name"`, and its meaning with `help:"..."`. Fields
// of nested structs without an env tag are read too. A default is the field's value in the
// struct the program starts from: it is stated once, in the program's Defaults, and --help
// prints it. Validation belongs to the program (Validator) and to its components'
// constructors.
package config

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"go/token"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/careerops/jobs/internal/cli"
)

// Program describes a program for its --help.
type Program struct {
	// Name is the program's name, e.g. "api".
	Name string
	// About says in a sentence or two what the program does.
	About string
}

// Validator is a configuration that checks itself, reporting the first problem as one line.
type Validator interface{ Validate() error }

// Parse reads a program's settings into cfg, a pointer to a struct that holds the defaults:
// the environment (getenv) overlays them, and the flags in args overlay the environment.
// With -h or --help it prints the usage (about, then every setting with its meaning and
// default) to stdout and reports help=true. A bad flag or an argument is a usage error
// (cli.ErrUsage); a bad value in the environment, or a cfg that does not validate, is a
// config error.
func Parse(p Program, args []string, getenv func(string) string, stdout io.Writer, cfg Validator) (help bool, err error) {
	defaults := copyOf(cfg)
	fs := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned as one line; usage is printed on --help only
	fs.Usage = func() {}
	if err := bindFlags(fs, cfg); err != nil {
		return false, err
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, PrintUsage(stdout, p, defaults)
		}
		return false, fmt.Errorf("%w: %w", cli.ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("%w: unexpected arguments: %q", cli.ErrUsage, fs.Args())
	}
	// The flags were parsed first, so that --help and usage errors need no environment; now
	// the environment goes under them.
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })
	if err := Load(getenv, cfg); err != nil {
		return false, err
	}
	for name, v := range given {
		if err := fs.Set(name, v); err != nil {
			return false, fmt.Errorf("%w: -%s: %w", cli.ErrUsage, name, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return false, fmt.Errorf("config: %w", err)
	}
	return false, nil
}

// Load overlays the environment on cfg, a pointer to a struct: a field whose variable is set
// (not empty) takes its value, the others keep theirs. A required variable that is not set,
// or a value that does not parse, is reported as one line naming the variable.
func Load(getenv func(string) string, cfg any) error {
	var last string // the variable looked up last: the one that failed, if one did
	lookup := envconfig.LookuperFunc(func(key string) (string, bool) {
		last = key
		v := getenv(key)
		return v, v != ""
	})
	err := envconfig.ProcessWith(context.Background(), &envconfig.Config{
		Target: cfg, Lookuper: lookup, DefaultOverwrite: true,
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, envconfig.ErrMissingRequired):
		return fmt.Errorf("config: %s is required", last)
	case last == "": // a mistake in the struct's tags
		return fmt.Errorf("config: %w", err)
	default:
		return fmt.Errorf("config: %s: %w", last, cause(err))
	}
}

// cause strips the field names go-envconfig puts before an error ("Common: MaxConns: …"):
// the variable's name says more.
func cause(err error) error {
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err
		}
		name, rest, ok := strings.Cut(err.Error(), ": ")
		if !ok || rest != inner.Error() || !token.IsIdentifier(name) {
			return err
		}
		err = inner
	}
}

// setting is one field of a configuration.
type setting struct {
	env      string
	required bool
	flag     string
	help     string
	field    reflect.Value
}

// settings lists the fields of the struct v points to that carry an env or flag tag,
// descending into nested structs.
func settings(v reflect.Value) []setting {
	v = reflect.Indirect(v)
	var out []setting
	for i := range v.NumField() {
		f, field := v.Type().Field(i), v.Field(i)
		env, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		flagName := f.Tag.Get("flag")
		switch {
		case !f.IsExported():
		case env == "" && flagName == "" && field.Kind() == reflect.Struct:
			out = append(out, settings(field)...)
		case env != "" || flagName != "":
			out = append(out, setting{
				env: env, required: strings.Contains(opts, "required"), flag: flagName,
				help: f.Tag.Get("help"), field: field,
			})
		}
	}
	return out
}

// bindFlags defines a flag for every field of cfg with a flag tag, bound to the field; the
// flag's default is the field's value now.
func bindFlags(fs *flag.FlagSet, cfg any) error {
	for _, s := range settings(reflect.ValueOf(cfg)) {
		if s.flag == "" {
			continue
		}
		switch p := s.field.Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, s.flag, *p, s.help)
		case *bool:
			fs.BoolVar(p, s.flag, *p, s.help)
		case *int:
			fs.IntVar(p, s.flag, *p, s.help)
		case *int64:
			fs.Int64Var(p, s.flag, *p, s.help)
		case *float64:
			fs.Float64Var(p, s.flag, *p, s.help)
		case *time.Duration:
			fs.DurationVar(p, s.flag, *p, s.help)
		case flag.Value: // a type that parses itself, such as an enumeration
			fs.Var(p, s.flag, s.help)
		default:
			return fmt.Errorf("config: flag -%s: unsupported type %T", s.flag, p)
		}
	}
	return nil
}

// PrintUsage writes a program's usage to w: its name and purpose, then every setting of
// defaults (a pointer to the struct the program starts from) with its flag, variable,
// default and meaning.
func PrintUsage(w io.Writer, p Program, defaults any) error {
	list := settings(reflect.ValueOf(defaults))
	var b strings.Builder
	synopsis := p.Name
	for _, s := range list {
		if s.flag != "" {
			synopsis += " [flags]"
			break
		}
	}
	fmt.Fprintf(&b, "Usage: %s\n\n%s\n\nSettings (environment variables", synopsis, p.About)
	if synopsis != p.Name {
		b.WriteString(" or flags; flags win")
	}
	b.WriteString("):\n")
	for _, s := range list {
		names := s.env
		if s.flag != "" {
			names = strings.TrimSuffix("-"+s.flag+", "+s.env, ", ")
		}
		fmt.Fprintf(&b, "  %s%s\n      %s\n", names, defaultOf(s), s.help)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// defaultOf describes a setting's default for the usage.
func defaultOf(s setting) string {
	switch {
	case s.required:
		return " (required)"
	case s.field.Kind() == reflect.String && s.field.String() == "":
		return ""
	case s.field.Kind() == reflect.String:
		return fmt.Sprintf(" (default %q)", s.field.String())
	default:
		return fmt.Sprintf(" (default %v)", s.field.Interface())
	}
}

// copyOf returns a pointer to a copy of the struct cfg points to.
func copyOf(cfg any) any {
	v := reflect.ValueOf(cfg).Elem()
	c := reflect.New(v.Type())
	c.Elem().Set(v)
	return c.Interface()
}
