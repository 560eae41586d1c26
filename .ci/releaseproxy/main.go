// Command releaseproxy writes a Go module proxy, as a directory for
// GOPROXY=file://…, holding this repository's modules as they would be
// published: every version already tagged, and the version about to be
// released built from the working tree. gorelease, the API gate of
// .ci/steps/95-release.sh, loads modules as their users would, from a
// proxy; the public one does not serve unpublished versions (the core at
// the version the nested modules require), nor does this CI reach the
// repository's tags on GitHub.
//
//	go run . -repo ../.. -out /tmp/proxy -version v0.1.0 . redisstore pgstore otelcofidis
//
// Each argument is a module's directory, relative to -repo. A nested
// module's tags are named after its directory (redisstore/v0.1.0), the
// root module's are bare (v0.1.0).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

func main() {
	repo := flag.String("repo", ".", "the repository's root")
	out := flag.String("out", "", "the proxy directory to write (required)")
	version := flag.String("version", "", "the version about to be released, built from the working tree (required)")
	flag.Parse()
	if *out == "" || !semver.IsValid(*version) || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: releaseproxy -out DIR -version vX.Y.Z [-repo DIR] MODULE_DIR...")
		os.Exit(2)
	}
	for _, dir := range flag.Args() {
		if err := publish(*repo, *out, filepath.ToSlash(filepath.Clean(dir)), *version); err != nil {
			fmt.Fprintln(os.Stderr, "releaseproxy:", err)
			os.Exit(1)
		}
	}
}

// publish writes the tagged versions of the module in dir and version,
// from the working tree.
func publish(repo, out, dir, version string) error {
	modPath, err := modulePath(filepath.Join(repo, dir))
	if err != nil {
		return err
	}
	tags, err := tagged(repo, dir)
	if err != nil {
		return err
	}
	versions := []string{version}
	for _, tag := range tags {
		v := tagVersion(dir, tag)
		if v == version {
			continue // the working tree is what is being released
		}
		versions = append(versions, v)
		if err := writeTag(repo, tag, dir, out, modPath, v); err != nil {
			return err
		}
	}
	if err := write(out, modPath, version, filepath.Join(repo, dir)); err != nil {
		return err
	}
	semver.Sort(versions)
	list := filepath.Join(out, escaped(modPath), "@v", "list")
	return os.WriteFile(list, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}

// writeTag adds version v of the module in dir, as tag has it, to the
// proxy, from a temporary tree removed once written.
func writeTag(repo, tag, dir, out, modPath, v string) error {
	tree, err := os.MkdirTemp("", "releaseproxy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	if err := archive(repo, tag, tree); err != nil {
		return err
	}
	return write(out, modPath, v, filepath.Join(tree, dir))
}

// write adds one version of the module in dir to the proxy: .info, .mod
// and .zip, as the go command reads them.
func write(out, modPath, version, dir string) error {
	at := filepath.Join(out, escaped(modPath), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(at, version+".info"), info, 0o644); err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(at, version+".mod"), gomod, 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(at, version+".zip"))
	if err != nil {
		return err
	}
	err = zip.CreateFromDir(f, module.Version{Path: modPath, Version: version}, dir)
	return errors.Join(err, f.Close())
}

func modulePath(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", err
	}
	p := modfile.ModulePath(data)
	if p == "" {
		return "", fmt.Errorf("%s/go.mod: no module path", dir)
	}
	return p, nil
}

// tagged returns the release tags of the module in dir.
func tagged(repo, dir string) ([]string, error) {
	pattern := "v*"
	if dir != "." {
		pattern = dir + "/v*"
	}
	cmd := exec.Command("git", "-C", repo, "tag", "--list", pattern)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git tag --list %s: %w", pattern, err)
	}
	var tags []string
	for _, t := range strings.Fields(stdout.String()) {
		if v := tagVersion(dir, t); semver.IsValid(v) && semver.Prerelease(v) == "" && semver.Build(v) == "" {
			tags = append(tags, t)
		}
	}
	return tags, nil
}

func tagVersion(dir, tag string) string {
	if dir == "." {
		return tag
	}
	return strings.TrimPrefix(tag, dir+"/")
}

// archive writes the tree of rev into dir.
func archive(repo, rev, dir string) error {
	var tarball bytes.Buffer
	cmd := exec.Command("git", "-C", repo, "archive", "--format=tar", rev)
	cmd.Stdout, cmd.Stderr = &tarball, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git archive %s: %w", rev, err)
	}
	untar := exec.Command("tar", "-x", "-C", dir)
	untar.Stdin, untar.Stderr = &tarball, os.Stderr
	return untar.Run()
}

// escaped is the module path as a proxy's URL holds it.
func escaped(modPath string) string {
	e, err := module.EscapePath(modPath)
	if err != nil {
		return path.Clean(modPath)
	}
	return e
}
