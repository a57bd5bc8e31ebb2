package catalog_test

import (
	"fmt"
	"strings"

	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
)

// The tag convention of the issue: java 17.0.9 on debian 12.8.
func ExampleImage_Tags() {
	f, err := config.Parse("socle.yaml", []byte(`images:
  - name: debian
    repository: my/debian
    version: "12.8"
    build: {assemble: {suite: bookworm, packages: [base-files]}}
  - name: java
    repository: my/java
    parent: debian
    version: 17.0.9
    build: {append: {layers: [{from: jdk, to: /opt/java}]}}
`))
	if err != nil {
		panic(err)
	}
	c, err := catalog.New(f)
	if err != nil {
		panic(err)
	}
	java, _ := c.Get("java")
	tags, _ := java.Tags()
	fmt.Println(tags.Immutable)
	fmt.Println(strings.Join(tags.Floating, " "))
	// Output:
	// 17.0.9-debian12.8
	// 17-debian12.8 17-debian12 17
}

// A multi-stage Dockerfile whose base comes from a build argument.
func ExampleParseDockerfile() {
	df, err := catalog.ParseDockerfile(strings.NewReader(`ARG RUNTIME=platform/java:17
FROM golang:1.26 AS build
RUN go build -o /out ./cmd/app
FROM ${RUNTIME}
COPY --from=build /out /app
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(df.Parent)
	// Output:
	// platform/java:17
}
