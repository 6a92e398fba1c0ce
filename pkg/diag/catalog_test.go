package diag

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// notYetProduced lists codes that no package produces yet, so the check
// "every code is produced somewhere" skips them. It must only shrink: a code
// listed here that is produced after all fails the test, so that the entry
// is removed.
var notYetProduced = map[string]bool{}

// codeConsts returns the Code constants of codes.go: name -> code.
func codeConsts(t *testing.T) map[string]Code {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Code{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				out[name.Name] = Code(v)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Code constants found in codes.go")
	}
	return out
}

var sectionRE = regexp.MustCompile(`(?m)^## (VX\d{4}): (.*)$`)

// TestCatalogDocumented checks that docs/errors.md has exactly one section per
// code constant, each with a title, an example and a fix.
func TestCatalogDocumented(t *testing.T) {
	consts := codeConsts(t)
	known := map[Code]string{}
	for name, c := range consts {
		if other, dup := known[c]; dup {
			t.Errorf("%s and %s share code %s", name, other, c)
		}
		known[c] = name
	}
	data, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	matches := sectionRE.FindAllStringSubmatchIndex(doc, -1)
	documented := map[Code]bool{}
	for i, m := range matches {
		code, title := Code(doc[m[2]:m[3]]), strings.TrimSpace(doc[m[4]:m[5]])
		end := len(doc)
		if i+1 < len(matches) {
			end = matches[i+1][0]
		}
		body := doc[m[1]:end]
		switch {
		case known[code] == "":
			t.Errorf("docs/errors.md documents %s, which is not a constant in codes.go", code)
		case documented[code]:
			t.Errorf("docs/errors.md documents %s twice", code)
		case title == "":
			t.Errorf("docs/errors.md: %s has no title", code)
		}
		for _, part := range []string{"**Meaning.**", "**Example**", "**Fix.**"} {
			if !strings.Contains(body, part) {
				t.Errorf("docs/errors.md: section %s lacks %s", code, part)
			}
		}
		documented[code] = true
	}
	for name, c := range consts {
		if !documented[c] {
			t.Errorf("%s (%s) has no section \"## %s: title\" in docs/errors.md", name, c, c)
		}
	}
}

// TestCatalogProduced checks that every code constant is used by some
// non-test Go file outside pkg/diag, so that the catalog documents no dead
// codes.
func TestCatalogProduced(t *testing.T) {
	consts := codeConsts(t)
	used := map[string]bool{}
	ref := regexp.MustCompile(`\bdiag\.([A-Z]\w*)\b`)
	root, self := filepath.Join("..", ".."), filepath.Join("..", "..", "pkg", "diag")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path == self || path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range ref.FindAllStringSubmatch(string(data), -1) {
			used[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range consts {
		switch {
		case used[name] && notYetProduced[name]:
			t.Errorf("%s (%s) is produced now: remove it from notYetProduced", name, c)
		case !used[name] && !notYetProduced[name]:
			t.Errorf("%s (%s) is never produced: no non-test file outside pkg/diag refers to diag.%s", name, c, name)
		}
	}
	for name := range notYetProduced {
		if _, ok := consts[name]; !ok {
			t.Errorf("notYetProduced names %s, which is not a code constant", name)
		}
	}
}
