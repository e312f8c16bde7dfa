Bup.biasJ äN< ¿v¼Ş9»
m<=™J½õµ<DÀ¼a¹J¼