package autodiff

import goruntime "runtime"

func defaultWorkers() int { return goruntime.GOMAXPROCS(0) }
