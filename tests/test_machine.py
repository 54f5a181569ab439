from benchmarks.machine import count_cpus, describe


def test_count_cpus_reads_the_kernels_list_format():
    assert count_cpus("0") == 1
    assert count_cpus("0-1") == 2
    assert count_cpus("0,2-3") == 3
    assert count_cpus("0-3,8-11") == 8


def test_describe_names_the_cpu_and_the_thread_count():
    text = describe()
    assert "CPUs" in text and "torch threads" in text
