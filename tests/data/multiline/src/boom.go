// Prints what Go programs print on failure: a logged error with
// debug.Stack(), then a panic from a goroutine.
package main

import (
	"fmt"
	"log"
	"os"
	"runtime/debug"
	"sync"
)

func load(id int) string {
	if id < 0 {
		panic(fmt.Sprintf("negative id %d", id))
	}
	return fmt.Sprintf("row%d", id)
}

func handle(id int) (s string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot handle request %d: %v", id, r)
			log.Printf("ERROR %v\n%s", err, debug.Stack())
		}
	}()
	return load(id), nil
}

func main() {
	log.SetOutput(os.Stdout)
	for i := 0; i < 3; i++ {
		s, _ := handle(i)
		log.Printf("INFO handled request %d -> %s", i, s)
		handle(-i - 1)
	}
	log.Printf("INFO shutting down")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m map[string]int
		m["boom"] = 1
	}()
	wg.Wait()
}
