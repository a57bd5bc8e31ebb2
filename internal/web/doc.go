// Package web holds the dashboard: server-rendered Go templates and a
// little CSS and JavaScript, embedded in the binary so that there is no
// front-end build. Only internal/server imports it. Page data types are
// declared here, and the trend chart is drawn as SVG on the server.
package web
