// Command pigment is Pigment's single binary: the diffusion engine's command
// line (generate, tokenize, bench) and, in later releases, the service
// (serve, gateway, worker).
//
// Usage:
//
//	pigment tokenize --model DIR TEXT
//	pigment bench unet [--json] [--width 512 --height 512 --batch 2] [--dtype f32|f16|bf16]
//	pigment bench generate [--json] [--width 512 --height 512 --steps 20] [--dtype f32|f16|bf16]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"time"
)

// command is one subcommand: its one-line summary and its entry point,
// which parses args (everything after the subcommand name) and runs.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"serve":    {"run the whole service in one process: embedded NATS, gateway and workers", runServe},
	"gateway":  {"run the HTTP gateway against a NATS cluster", runGateway},
	"worker":   {"run workers against a NATS cluster", runWorker},
	"generate": {"generate images from a prompt (txt2img, or img2img with --init-image)", runGenerate},
	"tokenize": {"print the CLIP token ids of a prompt as a JSON array", runTokenize},
	"bench":    {"measure the engine's speed (bench unet|vae|text|generate|load)", runBench},
	"eval":     {"score a shapes-trained model on held-out captions with the image analyser", runEval},
	"train":    {"train a model: from scratch on synthetic shapes or captioned images, or fine-tune one", runTrain},
}

// errUsage marks an error caused by the command line; main prints it with
// a hint and exits with status 2.
var errUsage = errors.New("usage")

// usageError is a command-line error naming the flag or argument at fault.
type usageError struct{ msg string }

func (e usageError) Error() string        { return e.msg }
func (e usageError) Is(target error) bool { return target == errUsage }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	// The heap is dominated by model weights ([]float32 and []uint16, which
	// the GC does not scan), so collecting at +10% instead of +100% costs
	// little CPU and keeps a loaded SD 1.5 model from doubling the process's
	// RSS: a whole fp16 512x512 generation peaks at 3.2 GB (4.0 GB at +25%).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(10)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go hardStop(ctx, os.Args[1:])
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// hardStop exits the process if it is still running some time after a
// SIGINT/SIGTERM: the engine checks for cancellation between denoising
// steps, and one step of a huge image can take minutes. The service
// commands get their shutdown grace (workers finish or release their job
// within 30 s) plus a margin; the one-shot commands stop at once.
func hardStop(ctx context.Context, args []string) {
	<-ctx.Done()
	wait := 2 * time.Second
	if len(args) > 0 && (args[0] == "serve" || args[0] == "worker" || args[0] == "gateway" || args[0] == "train") {
		wait = 45 * time.Second
	}
	time.Sleep(wait)
	fmt.Fprintf(os.Stderr, "pigment: still running %s after the stop signal; exiting\n", wait)
	os.Exit(130)
}

// run executes the command line args and returns the process exit status:
// 0 on success, 2 for a usage error, 1 for any other failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pigment: unknown command %q\n", args[0])
		printUsage(stderr)
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// Stopped by a signal (or the caller) before finishing.
		fmt.Fprintf(stderr, "pigment %s: stopped\n", args[0])
		return 130
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "pigment %s: %s\n", args[0], oneLine(err))
		return 2
	default:
		fmt.Fprintf(stderr, "pigment %s: %s\n", args[0], oneLine(err))
		return 1
	}
}

// oneLine is err's message on one line: the lines of a joined error (every
// problem of a model's config or weights, say) separated by "; ".
func oneLine(err error) string {
	var parts []string
	for line := range strings.Lines(err.Error()) {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: pigment <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'pigment <command> -h' for the flags of a command.")
}

// newFlagSet returns a FlagSet that reports errors instead of exiting and
// prints nothing itself: a bad flag becomes one error line (see
// parseFlags), and -h prints the command's Usage.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("pigment "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// printDefaults writes the flag list of fs to w.
func printDefaults(fs *flag.FlagSet, w io.Writer) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parseFlags parses args allowing flags after positional arguments
// ("pigment tokenize TEXT --model DIR"), returning the positional ones.
// Everything after a literal "--" is positional.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	// The flag package calls Usage on every error; print it only for -h.
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			// The flag package names flags with one dash; the docs use two.
			return nil, usageError{strings.Replace(err.Error(), "flag -", "flag --", 1)}
		}
		rest := fs.Args()
		// flag.Parse drops a "--" it stops at; detect it by length.
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
