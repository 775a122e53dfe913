// httpd.go - bench/b_io.c's Go reference for the Http rows: Go's net/http
// answering every request with the 6-byte body "hello\n" and the headers of
// examples/httpd.c (Content-Type: text/plain, Content-Length: 6; no Date
// header, which the C servers do not send either), keep-alive, listening on
// 127.0.0.1:PORT.  b_io builds it, then execs it with GOMAXPROCS=1 pinned
// to one core, and loads it with wrk.
//
//	go run httpd.go PORT
package main

import (
	"fmt"
	"net/http"
	"os"
)

var hello = []byte("hello\n")

func handler(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{"6"}
	h["Date"] = nil // suppressed (net/http adds one otherwise)
	w.Write(hello)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run httpd.go PORT")
		os.Exit(2)
	}
	err := http.ListenAndServe("127.0.0.1:"+os.Args[1], http.HandlerFunc(handler))
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
