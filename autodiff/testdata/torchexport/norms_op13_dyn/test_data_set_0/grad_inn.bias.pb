Binn.biasJ &£]¾üö¼<Àzú=Ön
>×S>ëj=eä¾İ„<