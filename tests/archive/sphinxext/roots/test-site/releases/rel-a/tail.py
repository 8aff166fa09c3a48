def tail():
    return 1