package processors

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

var routeFields = []Field{
	{Name: "when", Type: BoolExpr, Doc: "a boolean expression; the branch runs when it is true"},
	{Name: "steps", Type: StepsType, Doc: "the branch's steps (required with when)"},
	{Name: "default", Type: StepsType, Doc: "the steps of the catch-all branch (instead of when/steps)"},
}

func routeSpec() *Spec {
	return &Spec{
		Kind:    "route",
		Summary: "Send the event down the first branch whose condition holds.",
		Doc: "The value is a list of branches, each `{when: <bool expr>, steps: [...]}` or, last, " +
			"`{default: [...]}`. Branches are tried in order; the first whose `when` is true runs its " +
			"steps and no other branch runs. The event does not continue after the route (a branch's " +
			"steps are the rest of the rule), so a route is the last step of its list. With no " +
			"matching branch and no default the event is filtered. A branch after a catch-all " +
			"(`default`, or `when: true`) can never run: VX3006.",
		Fields: routeFields,
		Example: "- route:\n" +
			"    - when: event.total >= 1000\n" +
			"      steps: [{to: orders.large}]\n" +
			"    - default: [{to: orders.small}]",
		Build: buildRoute,
	}
}

type branch struct {
	when  *expr.Program // nil for default
	steps Chain
}

func buildRoute(b Builder, n *yaml.Node, path string) Step {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		b.Errorf(n, path, diag.InvalidStep, "route must be a list of branches ({when: ..., steps: [...]} or {default: [...]}), found %s", nodeKind(n))
		return nil
	}
	s := &routeStep{}
	ok := true
	var catchAll *yaml.Node
	for i, item := range n.Content {
		bpath := path + "[" + itoa(i) + "]"
		if catchAll != nil {
			setHint(b.Errorf(item, bpath, diag.UnreachableBranch,
				"this branch can never run: the branch at line %d catches every event", catchAll.Line),
				"remove the branch or move it before the catch-all")
			ok = false
			continue
		}
		f, fok := DecodeFields(b, item, bpath, "route", routeFields)
		if !f.keysOK {
			ok = false
			continue
		}
		switch {
		case f.Has("default") && (f.Has("when") || f.Has("steps")):
			b.Errorf(item, bpath, diag.InvalidStep, "a branch has either default or when/steps, not both")
			ok = false
		case f.Has("default"):
			s.branches = append(s.branches, branch{steps: f.Steps("default")})
			catchAll = item
		case !f.Has("when") || !f.Has("steps"):
			b.Errorf(item, bpath, diag.InvalidStep, "a branch needs when and steps (or default)")
			ok = false
		case !fok:
			ok = false
		default:
			p := f.Expr("when")
			s.branches = append(s.branches, branch{when: p, steps: f.Steps("steps")})
			if strings.TrimSpace(p.Source()) == "true" {
				catchAll = item
			}
		}
	}
	if !ok {
		return nil
	}
	return s
}

type routeStep struct{ branches []branch }

func (s *routeStep) Process(t ProcessorContext, ev *Event) (bool, error) {
	for _, br := range s.branches {
		if br.when != nil {
			ok, err := br.when.Bool(ev)
			if err != nil {
				return false, err
			}
			if !ok {
				continue
			}
		}
		return br.steps.Process(t, ev)
	}
	return false, nil
}

func (s *routeStep) Describe() Info {
	in := Info{Kind: "route", Arg: itoa(len(s.branches)) + " branches"}
	for _, br := range s.branches {
		label := "default"
		if br.when != nil {
			label = "when " + br.when.Source()
		}
		in.Branches = append(in.Branches, BranchInfo{Label: label, Steps: Describe(br.steps)})
	}
	return in
}
