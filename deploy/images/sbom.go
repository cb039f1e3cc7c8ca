package main

import (
	"io"
	"runtime/debug"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// sbom is the CycloneDX bill of materials of the binary name, from the
// build info the Go linker embeds in it: the main module, every module
// linked in (the version a replace points to, when there is one), and the
// Go standard library of the toolchain that built it. Go records no
// module graph in a binary, so each module is a direct dependency of the
// binary.
func sbom(name, version string, created time.Time, info *debug.BuildInfo) *cdx.BOM {
	bom := cdx.NewBOM()
	app := cdx.Component{
		BOMRef:  "pkg:golang/" + info.Path + "@" + version,
		Type:    cdx.ComponentTypeApplication,
		Name:    name,
		Version: version,
		ExternalReferences: &[]cdx.ExternalReference{
			{Type: cdx.ERTypeVCS, URL: Source},
		},
		Properties: buildSettings(info),
	}
	bom.Metadata = &cdx.Metadata{Timestamp: created.UTC().Format(time.RFC3339), Component: &app}

	components := []cdx.Component{module(info.Main), {
		BOMRef:     "pkg:golang/stdlib@" + info.GoVersion,
		Type:       cdx.ComponentTypeLibrary,
		Name:       "stdlib",
		Version:    info.GoVersion,
		PackageURL: "pkg:golang/stdlib@" + info.GoVersion,
	}}
	for _, d := range info.Deps {
		components = append(components, module(*d))
	}
	refs := make([]string, 0, len(components))
	for _, c := range components {
		refs = append(refs, c.BOMRef)
	}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: app.BOMRef, Dependencies: &refs}}
	return bom
}

// module is one Go module as a library component, named by its purl.
func module(m debug.Module) cdx.Component {
	path, version := m.Path, m.Version
	var props []cdx.Property
	if m.Replace != nil {
		props = append(props, cdx.Property{Name: "go:module:replace", Value: strings.TrimSpace(m.Replace.Path + " " + m.Replace.Version)})
		if m.Replace.Version != "" { // a module replaced by another module's version, not a local directory
			path, version = m.Replace.Path, m.Replace.Version
		}
	}
	purl := "pkg:golang/" + path
	if version != "" && version != "(devel)" {
		purl += "@" + version
	}
	c := cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: path, Version: version, PackageURL: purl}
	if m.Sum != "" {
		props = append(props, cdx.Property{Name: "go:module:sum", Value: m.Sum})
	}
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

// buildSettings are how the binary was built (GOOS, GOARCH, CGO_ENABLED,
// -trimpath, ...), as the build info lists them. -ldflags is left out: it
// repeats the version, and nothing else belongs in it.
func buildSettings(info *debug.BuildInfo) *[]cdx.Property {
	props := []cdx.Property{{Name: "go:toolchain", Value: info.GoVersion}}
	for _, s := range info.Settings {
		if s.Key == "-ldflags" {
			continue
		}
		props = append(props, cdx.Property{Name: "go:build:" + s.Key, Value: s.Value})
	}
	return &props
}

// writeSBOM writes bom as indented CycloneDX JSON.
func writeSBOM(w io.Writer, bom *cdx.BOM) error {
	return cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON).SetPretty(true).Encode(bom)
}
